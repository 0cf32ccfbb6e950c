package topic

import (
	"errors"
	"strings"
	"testing"
)

func TestValidateName(t *testing.T) {
	tests := []struct {
		name  string
		topic string
		ok    bool
	}{
		{"plain", "sport/tennis/player1", true},
		{"leading slash is a level", "/finance", true},
		{"trailing slash is a level", "sport/", true},
		{"single slash", "/", true},
		{"empty levels", "a//b", true},
		{"space is a valid character", "Accounts payable", true}, // 4.7.3 example
		{"dollar topic", "$SYS/broker/clients", true},
		{"unicode", "Zürich/温度", true},
		{"longest", strings.Repeat("a", MaxLength), true},
		{"empty", "", false},                                  // [MQTT-4.7.3-1]
		{"plus", "sport/+/player1", false},                    // [MQTT-4.7.1-1]
		{"hash", "sport/#", false},                            // [MQTT-4.7.1-1]
		{"plus inside a level", "sport+", false},              // [MQTT-4.7.1-1]
		{"null", "a\x00b", false},                             // [MQTT-4.7.3-2]
		{"too long", strings.Repeat("a", MaxLength+1), false}, // [MQTT-4.7.3-3]
		{"ill-formed utf-8", "a/\xff", false},                 // [MQTT-1.5.4-1]
		{"utf-16 surrogate", "a/\xed\xa0\x80", false},         // [MQTT-1.5.4-1]
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := ValidateName(tt.topic)
			if (err == nil) != tt.ok {
				t.Fatalf("ValidateName(%q) = %v, want ok=%v", tt.topic, err, tt.ok)
			}
			if err != nil && !errors.Is(err, ErrInvalidName) {
				t.Fatalf("ValidateName(%q) = %v, does not wrap ErrInvalidName", tt.topic, err)
			}
		})
	}
}

func TestValidateFilter(t *testing.T) {
	tests := []struct {
		name   string
		filter string
		ok     bool
	}{
		// Examples of section 4.7.1.2 and 4.7.1.3.
		{"hash alone", "#", true},
		{"hash last", "sport/tennis/player1/#", true},
		{"hash after empty level", "sport/tennis/#", true},
		{"hash not a whole level", "sport/tennis#", false}, // [MQTT-4.7.1-2]
		{"hash not last", "sport/tennis/#/ranking", false}, // [MQTT-4.7.1-2]
		{"plus alone", "+", true},                          // [MQTT-4.7.1-3]
		{"plus then hash", "+/tennis/#", true},             // [MQTT-4.7.1-3]
		{"plus not a whole level", "sport+", false},        // [MQTT-4.7.1-3]
		{"plus in the middle", "sport/+/player1", true},    // [MQTT-4.7.1-3]
		{"plus and text", "sport/+x/player1", false},       // [MQTT-4.7.1-3]
		{"plus plus", "++", false},                         // [MQTT-4.7.1-3]
		{"hash hash", "##", false},                         // [MQTT-4.7.1-2]
		{"hash then plus", "#/+", false},                   // [MQTT-4.7.1-2]
		{"hash in last level with text", "a/b#", false},    // [MQTT-4.7.1-2]
		{"plus levels", "+/+", true},
		{"leading slash", "/+", true},
		{"empty levels", "//", true},
		{"dollar", "$SYS/#", true},
		{"share prefix is ordinary here", "$share/g/a", true},
		{"empty", "", false},      // [MQTT-4.7.3-1]
		{"null", "a/\x00", false}, // [MQTT-4.7.3-2]
		{"longest", strings.Repeat("+/", MaxLength/2) + "#", true},
		{"too long", strings.Repeat("a", MaxLength+1), false}, // [MQTT-4.7.3-3]
		{"ill-formed utf-8", "\xc3/#", false},                 // [MQTT-1.5.4-1]
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := ValidateFilter(tt.filter)
			if (err == nil) != tt.ok {
				t.Fatalf("ValidateFilter(%q) = %v, want ok=%v", tt.filter, err, tt.ok)
			}
			if err != nil && !errors.Is(err, ErrInvalidFilter) {
				t.Fatalf("ValidateFilter(%q) = %v, does not wrap ErrInvalidFilter", tt.filter, err)
			}
		})
	}
}

func TestParseShared(t *testing.T) {
	tests := []struct {
		name   string
		filter string
		group  string
		inner  string
		shared bool
		ok     bool
	}{
		// Examples of section 4.8.2.
		{"spec example", "$share/consumer1/sport/tennis/+", "consumer1", "sport/tennis/+", true, true},
		{"second group, same filter", "$share/consumer2/sport/tennis/+", "consumer2", "sport/tennis/+", true, true},
		{"inner filter with leading slash", "$share/consumer1//finance", "consumer1", "/finance", true, true},
		{"inner hash", "$share/g/#", "g", "#", true, true},
		{"ordinary", "sport/tennis/+", "", "sport/tennis/+", false, true},
		{"ordinary invalid", "sport+", "", "sport+", false, false},
		{"share without slash is ordinary", "$share", "", "$share", false, true},
		{"other dollar prefix", "$shared/g/a", "", "$shared/g/a", false, true},
		{"case matters", "$SHARE/g/a", "", "$SHARE/g/a", false, true},
		{"empty group", "$share//a", "", "", true, false},             // [MQTT-4.8.2-1]
		{"no group, no filter", "$share/", "", "", true, false},       // [MQTT-4.8.2-1]
		{"group without filter", "$share/g", "", "", true, false},     // [MQTT-4.8.2-2]
		{"group with empty filter", "$share/g/", "", "", true, false}, // [MQTT-4.8.2-2]
		{"plus in group", "$share/g+/a", "", "", true, false},         // [MQTT-4.8.2-2]
		{"hash in group", "$share/#/a", "", "", true, false},          // [MQTT-4.8.2-2]
		{"group is plus", "$share/+/a", "", "", true, false},          // [MQTT-4.8.2-2]
		{"invalid inner", "$share/g/a#", "", "", true, false},         // [MQTT-4.7.1-2]
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			group, inner, shared, err := ParseShared(tt.filter)
			if (err == nil) != tt.ok || shared != tt.shared {
				t.Fatalf("ParseShared(%q) = shared %v, err %v; want shared %v, ok %v", tt.filter, shared, err, tt.shared, tt.ok)
			}
			if err != nil {
				if !errors.Is(err, ErrInvalidFilter) {
					t.Fatalf("ParseShared(%q) = %v, does not wrap ErrInvalidFilter", tt.filter, err)
				}
				return
			}
			if group != tt.group || inner != tt.inner {
				t.Fatalf("ParseShared(%q) = %q, %q; want %q, %q", tt.filter, group, inner, tt.group, tt.inner)
			}
		})
	}
}

func TestValidateDoesNotAllocate(t *testing.T) {
	allocs := testing.AllocsPerRun(100, func() {
		_ = ValidateName("sport/tennis/player1")
		_ = ValidateName("sport/#")
		_ = ValidateFilter("sport/+/player1/#")
		_ = ValidateFilter("sport+")
		_, _, _, _ = ParseShared("$share/g/sport/+")
	})
	if allocs != 0 {
		t.Fatalf("validation allocates %v times per run, want 0", allocs)
	}
}
