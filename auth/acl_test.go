package auth

import (
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/herald-mqtt/herald/broker"
)

func TestParseACL(t *testing.T) {
	file := `# operator rules
deny  publish   $SYS/#
allow all       users/%u/#
allow read      rooms/+/messages
allow write     sensors/%c/data   client=sensor-1
allow readwrite #                 user=admin
allow subscribe "lobby chat/#"    user="Ann Lee"
`
	rules, err := ParseACL(strings.NewReader(file), "acl")
	if err != nil {
		t.Fatal(err)
	}
	want := []Rule{
		{Action: Publish, Topic: "$SYS/#"},
		{Action: All, Allow: true, Topic: "users/%u/#"},
		{Action: Subscribe, Allow: true, Topic: "rooms/+/messages"},
		{Action: Publish, Allow: true, Topic: "sensors/%c/data", ClientID: "sensor-1"},
		{Action: All, Allow: true, Topic: "#", Username: "admin"},
		{Action: Subscribe, Allow: true, Topic: "lobby chat/#", Username: "Ann Lee"},
	}
	if len(rules) != len(want) {
		t.Fatalf("got %d rules, want %d: %+v", len(rules), len(want), rules)
	}
	for i := range want {
		if rules[i] != want[i] {
			t.Errorf("rule %d: got %+v, want %+v", i, rules[i], want[i])
		}
	}
}

func TestParseACLErrorsNameTheLine(t *testing.T) {
	for _, tc := range []struct{ file, want string }{
		{"allow all\n", "acl:1: want: allow|deny"},
		{"# c\npermit all a/b\n", `acl:2: "permit": want allow or deny`},
		{"allow pub a/b\n", `acl:1: "pub": want publish, subscribe or all`},
		{"allow all a/#/b\n", `acl:1: filter "a/#/b"`},
		{"allow all a/b owner=x\n", `acl:1: "owner=x": want user=NAME`},
		{"allow all a/b user=x user=y\n", "acl:1: user given twice"},
		{"allow all a/b user=\n", `acl:1: "user=": want user=NAME`},
		{"allow all \"a/b\n", "acl:1: bad quoted field"},
	} {
		_, err := ParseACL(strings.NewReader(tc.file), "acl")
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: error %v, want %q", tc.file, err, tc.want)
		}
	}
}

func TestACLFileRulesWithSubstitution(t *testing.T) {
	rules, err := ParseACL(strings.NewReader(`
deny  all       $SYS/#
allow all       users/%u/#
allow publish   devices/%c/state
allow subscribe devices/+/state
deny  subscribe secret/#
allow all       #                 user=admin
`), "acl")
	if err != nil {
		t.Fatal(err)
	}
	acl := &ACL{Rules: rules}
	ann := &broker.ClientInfo{Username: "ann", ClientID: "phone-1"}
	admin := &broker.ClientInfo{Username: "admin", ClientID: "console"}
	wild := &broker.ClientInfo{Username: "+", ClientID: "#"}
	dollar := &broker.ClientInfo{Username: "ann", ClientID: "$SYS"}
	for _, tc := range []struct {
		who       *broker.ClientInfo
		sub       bool
		topic     string
		wantAllow bool
	}{
		{ann, false, "users/ann/inbox", true},
		{ann, false, "users/bob/inbox", false},
		{ann, true, "users/ann/#", true},
		{ann, true, "users/+/inbox", false}, // would cover other users
		{ann, false, "devices/phone-1/state", true},
		{ann, false, "devices/phone-2/state", false},
		{ann, true, "devices/+/state", true},
		{ann, true, "$share/g/devices/+/state", true},
		{ann, true, "secret/x", false},
		{admin, true, "secret/x", false}, // the deny comes first
		{admin, true, "+/x", false},      // overlaps secret/#
		{admin, true, "#", false},        // overlaps secret/#
		{admin, false, "anything/at/all", true},
		{admin, false, "$SYS/x", false},
		{wild, true, "users/+/inbox", false}, // a wildcard username does not widen %u
		{wild, false, "devices/#/state", false},
		{dollar, false, "devices/$SYS/state", false}, // a $ client id gets no %c allow
		{dollar, false, "users/ann/inbox", true},
	} {
		var got bool
		if tc.sub {
			got = acl.CanSubscribe(tc.who, tc.topic)
		} else {
			got = acl.CanPublish(tc.who, tc.topic)
		}
		if got != tc.wantAllow {
			t.Errorf("%s sub=%v %q: got %v, want %v", tc.who.Username, tc.sub, tc.topic, got, tc.wantAllow)
		}
	}
}

// A deny rule keyed on %u or %c fails closed for an identity that would
// change its meaning: the client is denied what the rule's action covers,
// rather than the rule being skipped. An allow rule starting with a
// wildcard grants no $ topic to subscribe to.
func TestACLDenyWithUnsafeIdentityFailsClosed(t *testing.T) {
	rules, err := ParseACL(strings.NewReader(`
deny  all       private/%u/#
allow all       #
`), "acl")
	if err != nil {
		t.Fatal(err)
	}
	acl := &ACL{Rules: rules}
	for _, who := range []*broker.ClientInfo{{Username: "a/b"}, {Username: "+"}, {Username: "$x"}} {
		if acl.CanPublish(who, "private/a/b/x") || acl.CanPublish(who, "anything") {
			t.Errorf("username %q passed a deny rule keyed on %%u", who.Username)
		}
	}
	if !acl.CanPublish(&broker.ClientInfo{Username: "ann"}, "anything") {
		t.Error("a plain username was denied")
	}
	if acl.CanSubscribe(&broker.ClientInfo{Username: "ann"}, "$SYS/#") {
		t.Error("allow all # granted a subscription to $SYS/#")
	}
}

func TestFilterCoversAndOverlaps(t *testing.T) {
	for _, tc := range []struct {
		rule, filter     string
		covers, overlaps bool
	}{
		{"a/b", "a/b", true, true},
		{"a/#", "a/b/c", true, true},
		{"a/#", "a", true, true},
		{"a/+", "a/b", true, true},
		{"a/+", "a/#", false, true},
		{"a/b", "a/+", false, true},
		{"a/b", "#", false, true},
		{"a/b", "a/b/#", false, true},
		{"a/b", "a/c", false, false},
		{"a/b/c", "a/b", false, false},
		{"a/+/c", "a/b/d", false, false},
		{"$SYS/#", "#", false, false},
		{"$SYS/#", "+/x", false, false},
		{"#", "$SYS/x", false, false}, // [MQTT-4.7.2-1]: # matches no $ topic
		{"+/x", "$SYS/x", false, false},
		{"+/#", "$share/g/x", false, false},
		{"$SYS/#", "$SYS/x", true, true},
	} {
		if got := covers(tc.rule, tc.filter); got != tc.covers {
			t.Errorf("covers(%q, %q) = %v", tc.rule, tc.filter, got)
		}
		if got := overlaps(tc.rule, tc.filter); got != tc.overlaps {
			t.Errorf("overlaps(%q, %q) = %v", tc.rule, tc.filter, got)
		}
	}
}

func TestSubstitute(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"users/%u/#", "users/ann/#"},
		{"d/%c/%u", "d/c1/ann"},
		{"pre-%u-post", "pre-ann-post"},
		{"100%", "100%"},
		{"%x/%%u", "%x/%%u"}, // an unknown escape is copied as it is
	} {
		if got := substitute(tc.in, "ann", "c1"); got != tc.want {
			t.Errorf("substitute(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestAuthorizerGrantsNarrowAndOperatorDenyStillApplies(t *testing.T) {
	grants := NewGrants()
	operator := &ACL{Default: true, Rules: []Rule{
		{Action: Publish, Topic: "rooms/+/admin"},
		{Action: All, Allow: true, Topic: "#"},
	}}
	a := NewAuthorizer(operator, grants)
	withToken := &broker.ClientInfo{Username: "ann", ClientID: "c1"}
	g, err := ParseGrants([]byte(`{"pub":["rooms/42/#"],"sub":["users/%u/#"]}`))
	if err != nil {
		t.Fatal(err)
	}
	grants.Set(withToken, g)
	plain := &broker.ClientInfo{Username: "ann", ClientID: "c2"} // same user, no token rules

	for _, tc := range []struct {
		who   *broker.ClientInfo
		sub   bool
		topic string
		want  bool
	}{
		{withToken, false, "rooms/42/messages", true},
		{withToken, false, "rooms/43/messages", false}, // not granted
		{withToken, false, "rooms/42/admin", false},    // granted, but the operator denies
		{withToken, true, "users/ann/inbox", true},
		{withToken, true, "rooms/42/messages", false}, // pub only
		{plain, false, "rooms/43/messages", true},     // operator rules only
		{plain, false, "rooms/42/admin", false},
	} {
		var got bool
		if tc.sub {
			got = a.CanSubscribe(tc.who, tc.topic)
		} else {
			got = a.CanPublish(tc.who, tc.topic)
		}
		if got != tc.want {
			t.Errorf("%s sub=%v %q: got %v, want %v", tc.who.ClientID, tc.sub, tc.topic, got, tc.want)
		}
	}

	empty, _ := ParseGrants([]byte(`{}`))
	grants.Set(withToken, empty)
	if a.CanPublish(withToken, "rooms/42/messages") {
		t.Error("an empty grant list allowed a publish")
	}
}

// Rules given to a connection go away with the connection: once its
// ClientInfo is unreachable, the garbage collector's cleanup removes them.
func TestGrantsLiveAsLongAsTheConnection(t *testing.T) {
	grants := NewGrants()
	acl := &ACL{}
	func() {
		for range 100 {
			grants.Set(&broker.ClientInfo{ClientID: "gone"}, acl)
		}
	}()
	kept := &broker.ClientInfo{ClientID: "kept"}
	grants.Set(kept, acl)
	deadline := time.Now().Add(5 * time.Second)
	for grants.Len() > 1 && time.Now().Before(deadline) {
		runtime.GC()
		time.Sleep(10 * time.Millisecond)
	}
	if n := grants.Len(); n != 1 {
		t.Fatalf("%d connections hold rules, want only the live one", n)
	}
	if grants.Lookup(kept) != acl {
		t.Fatal("the live connection lost its rules")
	}
	runtime.KeepAlive(kept)
}

func BenchmarkAuthorizerCanPublish(b *testing.B) {
	grants := NewGrants()
	a := NewAuthorizer(&ACL{Default: false, Rules: []Rule{
		{Action: Publish, Topic: "$SYS/#"},
		{Action: All, Allow: true, Topic: "rooms/#"},
	}}, grants)
	info := &broker.ClientInfo{Username: "ann", ClientID: "c1"}
	b.ReportAllocs()
	for b.Loop() {
		if !a.CanPublish(info, "rooms/42/messages") {
			b.Fatal("denied")
		}
	}
}

// A quoted filter holding `="` is not a key="value" qualifier: splitting it
// there turned the malformed `"secret=" "` into the filter `"secret= ` (a
// rule on a topic the operator never wrote) instead of an error.
func TestParseACLQuotedFilterWithEqualsQuoteIsNotSplit(t *testing.T) {
	rules, err := ParseACL(strings.NewReader("deny all \"secret=\" \"\n"), "acl")
	if err == nil {
		t.Fatalf("malformed line parsed as %+v", rules)
	}
	rules, err = ParseACL(strings.NewReader(`allow all "a=\"b" user="Ann Lee"`+"\n"), "acl")
	if err != nil || len(rules) != 1 || rules[0].Topic != `a="b` || rules[0].Username != "Ann Lee" {
		t.Fatalf("got %+v, %v; want filter a=\"b for Ann Lee", rules, err)
	}
}
