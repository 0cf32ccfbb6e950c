package config

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// Duration is a time.Duration written as a Go duration string: "10s",
// "1m30s", "168h". A bare number other than 0 is rejected, because "30"
// could mean seconds or milliseconds; negative durations are rejected too.
type Duration time.Duration

// ParseDuration parses a Duration as written in the configuration.
func ParseDuration(s string) (Duration, error) {
	s = strings.TrimSpace(s)
	switch {
	case s == "":
		return 0, errors.New(`empty duration; want e.g. "10s"`)
	case s == "0":
		return 0, nil
	case isInteger(s):
		return 0, fmt.Errorf(`%q: a duration needs a unit (ms, s, m, h), e.g. "%ss"`, s, s)
	case strings.HasSuffix(s, "d") && isInteger(s[:len(s)-1]):
		return 0, fmt.Errorf(`%q: days are not a unit; use hours, e.g. "%dh"`, s, atoiOr0(s[:len(s)-1])*24)
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf(`%q: not a duration; want e.g. "10s", "1m30s" or "168h"`, s)
	}
	if d < 0 {
		return 0, fmt.Errorf("%q: must not be negative", s)
	}
	return Duration(d), nil
}

// String formats d as time.Duration does.
func (d Duration) String() string { return time.Duration(d).String() }

// UnmarshalYAML implements yaml.Unmarshaler.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode {
		return fmt.Errorf(`want a duration such as "10s", got %s`, describe(n))
	}
	v, err := ParseDuration(n.Value)
	if err != nil {
		return err
	}
	*d = v
	return nil
}

// MarshalYAML implements yaml.Marshaler.
func (d Duration) MarshalYAML() (any, error) { return d.String(), nil }

// ByteSize is a size in bytes, written as a whole number with an optional
// unit. Decimal units are powers of 1000 (KB, MB, GB, TB) and binary units
// powers of 1024 (KiB, MiB, GiB, TiB); B or no unit means bytes. Units are
// case-insensitive and may be separated from the number by a space:
// "65536", "512KiB", "1MB", "8 MiB".
type ByteSize int64

// Byte size units.
const (
	B   ByteSize = 1
	KB  ByteSize = 1000
	MB           = 1000 * KB
	GB           = 1000 * MB
	TB           = 1000 * GB
	KiB ByteSize = 1 << 10
	MiB          = 1 << 10 * KiB
	GiB          = 1 << 10 * MiB
	TiB          = 1 << 10 * GiB
)

// byteUnits is ordered for String: largest first, binary before decimal,
// so that 1048576 prints as 1MiB and 1000000 as 1MB.
var byteUnits = []struct {
	name string
	size ByteSize
}{
	{"TiB", TiB}, {"TB", TB}, {"GiB", GiB}, {"GB", GB},
	{"MiB", MiB}, {"MB", MB}, {"KiB", KiB}, {"KB", KB}, {"B", B},
}

// ParseByteSize parses a ByteSize as written in the configuration.
func ParseByteSize(s string) (ByteSize, error) {
	s = strings.TrimSpace(s)
	digits := len(s) - len(strings.TrimLeft(s, "0123456789"))
	num, unit := s[:digits], strings.TrimSpace(s[digits:])
	if strings.HasPrefix(s, "-") {
		return 0, fmt.Errorf("%q: must not be negative", s)
	}
	if num == "" || strings.HasPrefix(unit, ".") {
		return 0, fmt.Errorf(`%q: not a size; want a whole number with an optional unit, e.g. "65536", "512KiB" or "1MB"`, s)
	}
	var mult ByteSize
	for _, u := range byteUnits {
		if strings.EqualFold(unit, u.name) {
			mult = u.size
		}
	}
	if unit == "" {
		mult = B
	}
	if mult == 0 {
		return 0, fmt.Errorf("%q: unknown unit %q; want B, KB, MB, GB, TB (powers of 1000) or KiB, MiB, GiB, TiB (powers of 1024)", s, unit)
	}
	n, err := strconv.ParseInt(num, 10, 64)
	if err != nil || n > math.MaxInt64/int64(mult) {
		return 0, fmt.Errorf("%q: too large", s)
	}
	return ByteSize(n) * mult, nil
}

// String formats b with the largest unit that divides it exactly.
func (b ByteSize) String() string {
	if b <= 0 {
		return strconv.FormatInt(int64(b), 10)
	}
	for _, u := range byteUnits {
		if b%u.size == 0 {
			return strconv.FormatInt(int64(b/u.size), 10) + u.name
		}
	}
	return strconv.FormatInt(int64(b), 10) // unreachable: B divides everything
}

// UnmarshalYAML implements yaml.Unmarshaler.
func (b *ByteSize) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode {
		return fmt.Errorf(`want a size such as "1MiB", got %s`, describe(n))
	}
	v, err := ParseByteSize(n.Value)
	if err != nil {
		return err
	}
	*b = v
	return nil
}

// MarshalYAML implements yaml.Marshaler.
func (b ByteSize) MarshalYAML() (any, error) { return b.String(), nil }

func isInteger(s string) bool {
	s = strings.TrimPrefix(strings.TrimPrefix(s, "-"), "+")
	return s != "" && strings.Trim(s, "0123456789") == ""
}

func atoiOr0(s string) int {
	n, _ := strconv.Atoi(s)
	return n
}

// describe names a YAML node's value for an error message.
func describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	}
	return strconv.Quote(n.Value)
}
