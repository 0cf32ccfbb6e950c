package topic

import "testing"

// matchCases are the examples of MQTT 5.0 sections 4.7.1 to 4.7.3, and the
// edges around them. Trie and Retained tests run them too.
var matchCases = []struct {
	name   string
	filter string
	topic  string
	want   bool
}{
	// 4.7.1.2 multi-level wildcard [MQTT-4.7.1-2].
	{"hash matches parent", "sport/tennis/player1/#", "sport/tennis/player1", true},
	{"hash matches child", "sport/tennis/player1/#", "sport/tennis/player1/ranking", true},
	{"hash matches grandchild", "sport/tennis/player1/#", "sport/tennis/player1/score/wimbledon", true},
	{"hash matches singular parent", "sport/#", "sport", true},
	{"hash does not match sibling", "sport/tennis/player1/#", "sport/tennis/player2", false},
	{"hash does not match grandparent", "sport/tennis/#", "sport", false},
	{"hash matches empty level", "sport/#", "sport/", true},
	{"hash alone matches all", "#", "sport/tennis/player1", true},
	{"hash alone matches slash", "#", "/", true},
	// 4.7.1.3 single-level wildcard [MQTT-4.7.1-3].
	{"plus matches one level", "sport/tennis/+", "sport/tennis/player1", true},
	{"plus matches another", "sport/tennis/+", "sport/tennis/player2", true},
	{"plus does not match two levels", "sport/tennis/+", "sport/tennis/player1/ranking", false},
	{"plus needs a level", "sport/+", "sport", false},
	{"plus matches empty level", "sport/+", "sport/", true},
	{"plus plus matches leading slash", "+/+", "/finance", true},
	{"slash plus matches leading slash", "/+", "/finance", true},
	{"plus alone does not match two levels", "+", "/finance", false},
	{"plus alone matches one level", "+", "finance", true},
	{"plus in middle", "sport/+/player1", "sport/tennis/player1", true},
	{"plus in middle, wrong tail", "sport/+/player1", "sport/tennis/player2", false},
	{"sport plus not sport", "sport/+", "sport/tennis/player1", false},
	{"plus then hash", "+/tennis/#", "sport/tennis", true},
	{"plus then hash deep", "+/tennis/#", "sport/tennis/player1/ranking", true},
	{"plus hash matches one level", "+/#", "sport", true},
	// 4.7.2 topics beginning with '$' [MQTT-4.7.2-1].
	{"hash skips $SYS", "#", "$SYS/broker/clients", false},
	{"hash skips bare $", "#", "$", false},
	{"plus skips $SYS", "+/monitor/Clients", "$SYS/monitor/Clients", false},
	{"plus hash skips $SYS", "+/#", "$SYS", false},
	{"$SYS hash", "$SYS/#", "$SYS/monitor/Clients", true},
	{"$SYS hash parent", "$SYS/#", "$SYS", true},
	{"$SYS plus", "$SYS/monitor/+", "$SYS/monitor/Clients", true},
	{"dollar later is ordinary", "a/+", "a/$b", true},
	{"dollar later with hash", "a/#", "a/$b/c", true},
	// 4.7.3 no normalisation [MQTT-4.7.3-4].
	{"case matters", "ACCOUNTS", "Accounts", false},
	{"leading slash differs", "finance", "/finance", false},
	{"trailing slash differs", "finance", "finance/", false},
	{"space matters", "Accounts payable", "Accounts payable", true},
	{"exact", "sport/tennis", "sport/tennis", true},
	{"prefix is not a match", "sport/ten", "sport/tennis", false},
	{"longer filter", "sport/tennis/x", "sport/tennis", false},
	{"empty levels", "a//b", "a//b", true},
	{"plus matches empty middle", "a/+/b", "a//b", true},
}

func TestMatch(t *testing.T) {
	for _, tt := range matchCases {
		t.Run(tt.name, func(t *testing.T) {
			if got := Match(tt.filter, tt.topic); got != tt.want {
				t.Fatalf("Match(%q, %q) = %v, want %v", tt.filter, tt.topic, got, tt.want)
			}
			if got := refMatch(tt.filter, tt.topic); got != tt.want {
				t.Fatalf("refMatch(%q, %q) = %v, want %v (test reference is wrong)", tt.filter, tt.topic, got, tt.want)
			}
		})
	}
}

func TestMatchDoesNotAllocate(t *testing.T) {
	allocs := testing.AllocsPerRun(100, func() {
		for _, tt := range matchCases {
			Match(tt.filter, tt.topic)
		}
	})
	if allocs != 0 {
		t.Fatalf("Match allocates %v times per run, want 0", allocs)
	}
}
