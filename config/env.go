package config

import (
	"errors"
	"fmt"
	"reflect"
	"sort"
	"strconv"
	"strings"
)

// EnvPrefix begins every environment variable that ApplyEnv reads.
const EnvPrefix = "HERALD_"

// EnvConfigFile is the one HERALD_ variable that is not a configuration
// key: it is left for the command to name the config file, and ApplyEnv
// ignores it.
const EnvConfigFile = "HERALD_CONFIG"

// ApplyEnv overrides c with HERALD_* variables from environ (as returned by
// os.Environ). The variable for a key is HERALD_ followed by its path
// upper-cased with dots as underscores: mqtt.max_packet_size is
// HERALD_MQTT_MAX_PACKET_SIZE=1MB. Values are written as in the file; a
// list of strings (kafka.brokers) is comma-separated. Keys inside lists of
// mappings (listeners, acl.rules, kafka.out, kafka.in) cannot be set this
// way.
//
// Every bad value and every HERALD_ variable that names no key is reported,
// each naming the variable. ApplyEnv does not validate; call Validate after
// it, or use LoadWithEnv.
func ApplyEnv(c *Config, environ []string) error {
	_, err := applyEnv(c, environ)
	return err
}

// applyEnv is ApplyEnv that also returns, for each key it set, the name of
// the variable that set it.
func applyEnv(c *Config, environ []string) (map[string]string, error) {
	keys := envKeys()
	sources := map[string]string{}
	var errs []error
	for _, kv := range environ {
		name, value, _ := strings.Cut(kv, "=")
		if !strings.HasPrefix(name, EnvPrefix) || name == EnvConfigFile {
			continue
		}
		path, ok := keys[name]
		if !ok {
			errs = append(errs, fmt.Errorf("%s: not a configuration key%s", name, suggestEnv(name, keys)))
			continue
		}
		if err := setString(fieldByPath(c, path), value); err != nil {
			errs = append(errs, fmt.Errorf("%s: %s: %w", name, path, err))
			continue
		}
		sources[path] = name
	}
	return sources, errors.Join(errs...)
}

// EnvName returns the environment variable that sets the key at path.
func EnvName(path string) string {
	return EnvPrefix + strings.ToUpper(strings.ReplaceAll(path, ".", "_"))
}

// envKeys maps each settable variable name to its key path: scalar keys and
// lists of strings outside lists of mappings.
func envKeys() map[string]string {
	keys := map[string]string{}
	walkSchema(reflect.TypeFor[Config](), "", func(path string) {
		if strings.Contains(path, "[]") {
			return
		}
		t := typeByPath(path)
		if t.Kind() == reflect.Struct || t.Kind() == reflect.Slice && t.Elem().Kind() != reflect.String {
			return
		}
		keys[EnvName(path)] = path
	})
	return keys
}

func typeByPath(path string) reflect.Type {
	t := reflect.TypeFor[Config]()
	for key := range strings.SplitSeq(path, ".") {
		t = fieldsOf(t)[key].Type
	}
	return t
}

func fieldByPath(c *Config, path string) reflect.Value {
	v := reflect.ValueOf(c).Elem()
	for key := range strings.SplitSeq(path, ".") {
		v = v.FieldByIndex(fieldsOf(v.Type())[key].Index)
	}
	return v
}

// setString sets v from its textual form, as written in the file.
func setString(v reflect.Value, s string) error {
	switch p := v.Addr().Interface().(type) {
	case *Duration:
		d, err := ParseDuration(s)
		if err == nil {
			*p = d
		}
		return err
	case *ByteSize:
		b, err := ParseByteSize(s)
		if err == nil {
			*p = b
		}
		return err
	}
	switch v.Kind() {
	case reflect.Pointer:
		e := reflect.New(v.Type().Elem())
		if err := setString(e.Elem(), s); err != nil {
			return err
		}
		v.Set(e)
	case reflect.String:
		v.SetString(s)
	case reflect.Bool:
		b, err := strconv.ParseBool(strings.TrimSpace(s))
		if err != nil {
			return fmt.Errorf("want true or false, got %q", s)
		}
		v.SetBool(b)
	case reflect.Int:
		n, err := strconv.ParseInt(strings.TrimSpace(s), 10, 0)
		if err != nil {
			return fmt.Errorf("want a whole number, got %q", s)
		}
		v.SetInt(n)
	case reflect.Float64:
		f, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
		if err != nil {
			return fmt.Errorf("want a number, got %q", s)
		}
		v.SetFloat(f)
	case reflect.Slice: // of strings, by envKeys
		var list []string
		for item := range strings.SplitSeq(s, ",") {
			if item = strings.TrimSpace(item); item != "" {
				list = append(list, item)
			}
		}
		v.Set(reflect.ValueOf(list).Convert(v.Type()))
	default:
		return fmt.Errorf("cannot be set from the environment") // unreachable for the schema
	}
	return nil
}

// suggestEnv returns " (did you mean X?)" for the closest known variable.
func suggestEnv(name string, keys map[string]string) string {
	names := make([]string, 0, len(keys))
	for k := range keys {
		names = append(names, k)
	}
	sort.Strings(names)
	best, bestDist := "", 3
	for _, k := range names {
		if d := editDistance(name, k); d < bestDist {
			best, bestDist = k, d
		}
	}
	if best == "" {
		return ""
	}
	return fmt.Sprintf(" (did you mean %s?)", best)
}
