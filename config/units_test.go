package config

import (
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"
)

func TestParseDurationAcceptsGoDurationsAndZero(t *testing.T) {
	tests := []struct {
		in   string
		want time.Duration
	}{
		{"10s", 10 * time.Second},
		{"1m30s", 90 * time.Second},
		{"168h", 7 * 24 * time.Hour},
		{"500ms", 500 * time.Millisecond},
		{" 2s ", 2 * time.Second},
		{"0", 0},
		{"0s", 0},
	}
	for _, tt := range tests {
		got, err := ParseDuration(tt.in)
		if err != nil || time.Duration(got) != tt.want {
			t.Errorf("ParseDuration(%q) = %v, %v; want %v", tt.in, got, err, tt.want)
		}
	}
}

func TestParseDurationRejectsWithMessageNamingValue(t *testing.T) {
	tests := []struct {
		in, wantMsg string
	}{
		{"30", `"30": a duration needs a unit`},
		{"-5", `"-5": a duration needs a unit`},
		{"7d", `use hours, e.g. "168h"`},
		{"ten seconds", `"ten seconds": not a duration`},
		{"-5s", `"-5s": must not be negative`},
		{"", "empty duration"},
	}
	for _, tt := range tests {
		_, err := ParseDuration(tt.in)
		if err == nil || !strings.Contains(err.Error(), tt.wantMsg) {
			t.Errorf("ParseDuration(%q) error = %v; want it to contain %q", tt.in, err, tt.wantMsg)
		}
	}
}

func TestParseByteSizeUnitsAreDecimalAndBinary(t *testing.T) {
	tests := []struct {
		in   string
		want ByteSize
	}{
		{"65536", 65536},
		{"0", 0},
		{"100B", 100},
		{"1KB", 1000},
		{"1kb", 1000},
		{"512KiB", 512 * 1024},
		{"1MB", 1000 * 1000},
		{"1MiB", 1 << 20},
		{"8 MiB", 8 << 20},
		{"2GB", 2e9},
		{"1GiB", 1 << 30},
		{"3TB", 3e12},
		{"1TiB", 1 << 40},
	}
	for _, tt := range tests {
		got, err := ParseByteSize(tt.in)
		if err != nil || got != tt.want {
			t.Errorf("ParseByteSize(%q) = %d, %v; want %d", tt.in, got, err, tt.want)
		}
	}
}

func TestParseByteSizeRejectsWithMessageNamingValue(t *testing.T) {
	tests := []struct {
		in, wantMsg string
	}{
		{"", `"": not a size`},
		{"MB", `"MB": not a size`},
		{"1.5MB", `"1.5MB": not a size`},
		{"-1MB", `"-1MB": must not be negative`},
		{"10M", `"10M": unknown unit "M"`},
		{"10 bytes", `unknown unit "bytes"`},
		{"9999999999999999999", "too large"},
		{"9000000TiB", "too large"},
	}
	for _, tt := range tests {
		_, err := ParseByteSize(tt.in)
		if err == nil || !strings.Contains(err.Error(), tt.wantMsg) {
			t.Errorf("ParseByteSize(%q) error = %v; want it to contain %q", tt.in, err, tt.wantMsg)
		}
	}
}

func TestByteSizeStringUsesLargestExactUnitAndRoundTrips(t *testing.T) {
	tests := []struct {
		in   ByteSize
		want string
	}{
		{0, "0"},
		{1, "1B"},
		{1000, "1KB"},
		{1024, "1KiB"},
		{1 << 20, "1MiB"},
		{1500, "1500B"},
		{8 * MiB, "8MiB"},
		{2 * GB, "2GB"},
	}
	for _, tt := range tests {
		if got := tt.in.String(); got != tt.want {
			t.Errorf("ByteSize(%d).String() = %q; want %q", int64(tt.in), got, tt.want)
		}
		if back, err := ParseByteSize(tt.in.String()); err != nil || back != tt.in {
			t.Errorf("ParseByteSize(%q) = %d, %v; want %d", tt.in.String(), back, err, tt.in)
		}
	}
}

func TestDurationAndByteSizeRoundTripThroughYAML(t *testing.T) {
	type doc struct {
		D Duration `yaml:"d"`
		B ByteSize `yaml:"b"`
	}
	in := doc{D: Duration(90 * time.Second), B: 512 * KiB}
	out, err := yaml.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	var back doc
	if err := yaml.Unmarshal(out, &back); err != nil || back != in {
		t.Fatalf("round trip of %+v via %q = %+v, %v", in, out, back, err)
	}
}

func TestUnmarshalYAMLRejectsNonScalars(t *testing.T) {
	var d struct {
		D Duration `yaml:"d"`
		B ByteSize `yaml:"b"`
	}
	err := yaml.Unmarshal([]byte("d: [1s]\n"), &d)
	if err == nil || !strings.Contains(err.Error(), "got a list") {
		t.Errorf("duration from a list: error = %v; want it to say got a list", err)
	}
	err = yaml.Unmarshal([]byte("b: {x: 1}\n"), &d)
	if err == nil || !strings.Contains(err.Error(), "got a mapping") {
		t.Errorf("size from a mapping: error = %v; want it to say got a mapping", err)
	}
}

// FuzzParseDuration: whatever is written either fails or gives a
// non-negative duration that reads back the same from its String.
func FuzzParseDuration(f *testing.F) {
	for _, s := range []string{"10s", "1m30s", "168h", "0", "30", "-1s", "1.5h", "9223372036854775807ns", "1e3s", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		d, err := ParseDuration(s)
		if err != nil {
			return
		}
		if d < 0 {
			t.Fatalf("ParseDuration(%q) = %v, negative", s, d)
		}
		if back, err := ParseDuration(d.String()); err != nil || back != d {
			t.Fatalf("ParseDuration(%q) = %v, whose String reads back as %v, %v", s, d, back, err)
		}
	})
}

// FuzzParseByteSize: whatever is written either fails or gives a size
// that reads back the same from its String.
func FuzzParseByteSize(f *testing.F) {
	for _, s := range []string{"65536", "512KiB", "1MB", "8 MiB", "1TiB", "0", "-1", "1.5MB", "99999999999999999999", "16EiB", "kb", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		b, err := ParseByteSize(s)
		if err != nil {
			return
		}
		if back, err := ParseByteSize(b.String()); err != nil || back != b {
			t.Fatalf("ParseByteSize(%q) = %d, whose String %q reads back as %d, %v", s, b, b.String(), back, err)
		}
	})
}
