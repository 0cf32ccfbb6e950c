package topic_test

import (
	"fmt"

	"github.com/herald-mqtt/herald/topic"
)

// A router subscribes what clients send, after ParseShared, and matches each
// published topic name.
func ExampleTrie() {
	type options struct{ qos byte }
	subs := topic.NewTrie[string, options]()
	for _, s := range []struct {
		client, filter string
		qos            byte
	}{
		{"alice", "sport/tennis/+", 1},
		{"bob", "sport/#", 0},
		{"worker-1", "$share/scorers/sport/tennis/+", 1},
		{"worker-2", "$share/scorers/sport/tennis/+", 1},
	} {
		group, filter, _, err := topic.ParseShared(s.filter)
		if err != nil {
			panic(err)
		}
		subs.Subscribe(filter, group, s.client, options{s.qos})
	}
	subs.Match("sport/tennis/player1",
		func(client string, o options) { fmt.Println("deliver to", client, "at QoS", o.qos) },
		func(g *topic.Group[string, options]) {
			m := g.Members[g.Next()]
			fmt.Println("deliver to one of", g.Name, "on", g.Filter+":", m.Client)
		})
	// Unordered output:
	// deliver to alice at QoS 1
	// deliver to bob at QoS 0
	// deliver to one of scorers on sport/tennis/+: worker-1
}

func ExampleRetained() {
	retained := topic.NewRetained[string]()
	retained.Set("sensors/kitchen/temp", "21.5")
	retained.Set("sensors/hall/temp", "19.0")
	retained.Set("sensors/hall/humidity", "40")
	retained.Set("$SYS/uptime", "3600")
	retained.Match("sensors/+/temp", func(name, v string) bool {
		fmt.Println(name, v)
		return true
	})
	retained.Match("#", func(name, v string) bool {
		if name == "$SYS/uptime" {
			fmt.Println("never: '#' does not match $ topics")
		}
		return true
	})
	// Unordered output:
	// sensors/kitchen/temp 21.5
	// sensors/hall/temp 19.0
}

func ExampleMatch() {
	fmt.Println(topic.Match("sport/#", "sport"))
	fmt.Println(topic.Match("sport/+", "sport"))
	fmt.Println(topic.Match("+/+", "/finance"))
	fmt.Println(topic.Match("#", "$SYS/broker/load"))
	// Output:
	// true
	// false
	// true
	// false
}
