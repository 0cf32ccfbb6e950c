package topic

import (
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"
)

// MaxLength is the longest topic name or filter in bytes [MQTT-4.7.3-3]:
// both are UTF-8 encoded strings with a two-byte length prefix.
const MaxLength = 65535

// ErrInvalidName is wrapped by every error ValidateName returns. The broker
// answers it with reason code 0x90, Topic Name invalid.
var ErrInvalidName = errors.New("invalid topic name")

// ErrInvalidFilter is wrapped by every error ValidateFilter and ParseShared
// return. The broker answers it with reason code 0x8F, Topic Filter invalid.
var ErrInvalidFilter = errors.New("invalid topic filter")

// The errors are made once so that rejecting a topic does not allocate.
var (
	errNameEmpty    = fmt.Errorf("%w: empty [MQTT-4.7.3-1]", ErrInvalidName)
	errNameLong     = fmt.Errorf("%w: longer than %d bytes [MQTT-4.7.3-3]", ErrInvalidName, MaxLength)
	errNameNull     = fmt.Errorf("%w: contains U+0000 [MQTT-4.7.3-2]", ErrInvalidName)
	errNameUTF8     = fmt.Errorf("%w: not well-formed UTF-8 [MQTT-1.5.4-1]", ErrInvalidName)
	errNameWildcard = fmt.Errorf("%w: contains a wildcard '+' or '#' [MQTT-4.7.1-1]", ErrInvalidName)

	errFilterEmpty = fmt.Errorf("%w: empty [MQTT-4.7.3-1]", ErrInvalidFilter)
	errFilterLong  = fmt.Errorf("%w: longer than %d bytes [MQTT-4.7.3-3]", ErrInvalidFilter, MaxLength)
	errFilterNull  = fmt.Errorf("%w: contains U+0000 [MQTT-4.7.3-2]", ErrInvalidFilter)
	errFilterUTF8  = fmt.Errorf("%w: not well-formed UTF-8 [MQTT-1.5.4-1]", ErrInvalidFilter)
	errFilterHash  = fmt.Errorf("%w: '#' must be the whole last level [MQTT-4.7.1-2]", ErrInvalidFilter)
	errFilterPlus  = fmt.Errorf("%w: '+' must be a whole level [MQTT-4.7.1-3]", ErrInvalidFilter)

	errShareGroupEmpty = fmt.Errorf("%w: empty shared subscription group [MQTT-4.8.2-1]", ErrInvalidFilter)
	errShareGroupChars = fmt.Errorf("%w: shared subscription group contains '+' or '#' [MQTT-4.8.2-2]", ErrInvalidFilter)
	errShareNoFilter   = fmt.Errorf("%w: shared subscription group not followed by '/' and a filter [MQTT-4.8.2-2]", ErrInvalidFilter)
)

// sharePrefix starts every shared subscription's filter [MQTT-4.8.2-1].
const sharePrefix = "$share/"

// ValidateName reports whether name may be published to: non-empty, at most
// MaxLength bytes, well-formed UTF-8 without U+0000, and free of wildcards.
// The error wraps ErrInvalidName.
func ValidateName(name string) error {
	switch {
	case name == "":
		return errNameEmpty
	case len(name) > MaxLength:
		return errNameLong
	case strings.ContainsAny(name, "+#"):
		return errNameWildcard
	case strings.IndexByte(name, 0) >= 0:
		return errNameNull
	case !utf8.ValidString(name):
		return errNameUTF8
	}
	return nil
}

// ValidateFilter reports whether filter may be subscribed to: non-empty, at
// most MaxLength bytes, well-formed UTF-8 without U+0000, with '+' only as a
// whole level and '#' only as the whole last level. It does not treat
// "$share/" specially: use ParseShared for filters a client sends.
// The error wraps ErrInvalidFilter.
func ValidateFilter(filter string) error {
	switch {
	case filter == "":
		return errFilterEmpty
	case len(filter) > MaxLength:
		return errFilterLong
	case strings.IndexByte(filter, 0) >= 0:
		return errFilterNull
	case !utf8.ValidString(filter):
		return errFilterUTF8
	}
	for rest, more := filter, true; more; {
		var level string
		level, rest, more = strings.Cut(rest, "/")
		if len(level) == 1 {
			if level == "#" && more {
				return errFilterHash
			}
			continue
		}
		if i := strings.IndexAny(level, "+#"); i >= 0 {
			if level[i] == '#' {
				return errFilterHash
			}
			return errFilterPlus
		}
	}
	return nil
}

// ParseShared splits a filter a client subscribes to. For
// "$share/{group}/{filter}" it returns the group, the inner filter and
// shared=true; for anything else it returns inner=filter and shared=false.
// Either way err is non-nil, wrapping ErrInvalidFilter, if the group is empty
// or contains '+' or '#' [MQTT-4.8.2-1] [MQTT-4.8.2-2], or if the (inner)
// filter fails ValidateFilter.
func ParseShared(filter string) (group, inner string, shared bool, err error) {
	rest, ok := strings.CutPrefix(filter, sharePrefix)
	if !ok {
		return "", filter, false, ValidateFilter(filter)
	}
	group, inner, ok = strings.Cut(rest, "/")
	switch {
	case group == "":
		return "", "", true, errShareGroupEmpty
	case strings.ContainsAny(group, "+#"):
		return "", "", true, errShareGroupChars
	case !ok || inner == "":
		return "", "", true, errShareNoFilter
	}
	if err := ValidateFilter(inner); err != nil {
		return "", "", true, err
	}
	return group, inner, true, nil
}
