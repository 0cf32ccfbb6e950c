package bench

import (
	"fmt"
	"strconv"

	"github.com/herald-mqtt/herald/packet"
)

// role is what a lasting client does in its scenario.
type role byte

const (
	roleIdle       role = iota // conn: connects and holds
	roleSubscriber             // subscribes and receives
	rolePublisher              // publishes
	roleMember                 // chat: both
)

// slot is one lasting client of the run, the same in every worker.
type slot struct {
	global int  // over all lasting clients: connect order, shard, source IP
	role   role // what it does
	index  int  // within its role
}

// plan is a scenario laid out: who exists, who subscribes to what, who
// publishes where and to how many subscribers each message goes.
type plan struct {
	s      Scenario
	o      Options
	prefix string // topic prefix
	subs   int    // subscribers, consumers, users or members
	pubs   int    // publishers (chat: members)
	total  int    // lasting clients
}

func newPlan(s Scenario, o Options) *plan {
	p := &plan{s: s, o: o, prefix: o.Topics}
	switch s.Name {
	case Conn:
		p.total = s.Clients
	case Chat:
		p.subs, p.pubs, p.total = s.Subscribers, s.Subscribers, s.Subscribers
	default:
		p.subs, p.pubs = s.Subscribers, s.Publishers
		p.total = p.subs + p.pubs
	}
	return p
}

// slot returns lasting client g: subscribers first, then publishers, so
// that subscriptions are in place before anyone publishes.
func (p *plan) slot(g int) slot {
	switch {
	case p.s.Name == Conn:
		return slot{global: g, role: roleIdle, index: g}
	case p.s.Name == Chat:
		return slot{global: g, role: roleMember, index: g}
	case g < p.subs:
		return slot{global: g, role: roleSubscriber, index: g}
	}
	return slot{global: g, role: rolePublisher, index: g - p.subs}
}

// shardOf says which worker runs lasting client g. Fan-in consumers all
// live in worker 0 so that one tracker sees a shared group's deliveries;
// with more than one worker, the publishers leave worker 0 to them, as a
// backend service has its own machine. (In one process the consumer's
// goroutine waits its turn behind a thousand runnable publishers, and the
// run measures the bench's scheduler rather than the broker.)
func (p *plan) shardOf(g, shards int) int {
	if p.s.Name == Fanin {
		if g < p.subs {
			return 0
		}
		if shards > 1 {
			return 1 + (g-p.subs)%(shards-1)
		}
	}
	return g % shards
}

func (p *plan) clientID(sl slot) string {
	letter := [...]string{"c", "s", "p", "m"}[sl.role]
	return p.o.ClientIDs + letter + strconv.Itoa(sl.index)
}

// sharedGroup is the $share group name fan-in consumers join.
const sharedGroup = "herald-bench"

// subscriptions returns what sl subscribes to (nil for none).
func (p *plan) subscriptions(sl slot) []packet.Subscription {
	q := p.o.QoS
	switch {
	case sl.role == roleMember:
		r := sl.index / p.s.RoomSize
		return []packet.Subscription{
			// v5 No Local keeps a member's own room messages from coming back.
			{Filter: p.roomTopic(r), QoS: q, NoLocal: p.o.MQTT == 5},
			{Filter: p.userTopic(sl.index), QoS: q},
		}
	case sl.role == roleIdle && p.s.Subscribe:
		return []packet.Subscription{{Filter: p.connTopic(sl.index), QoS: q}}
	case sl.role != roleSubscriber:
		return nil
	}
	switch p.s.Name {
	case Fanout, Churn:
		return []packet.Subscription{{Filter: p.mainTopic(), QoS: q}}
	case Fanin:
		f := p.prefix + "/fanin/+"
		if p.s.Shared {
			f = "$share/" + sharedGroup + "/" + f
		}
		return []packet.Subscription{{Filter: f, QoS: q}}
	case Unicast:
		return []packet.Subscription{{Filter: p.userTopic(sl.index), QoS: q}}
	}
	return nil
}

func (p *plan) mainTopic() string      { return p.prefix + "/" + p.s.Name }
func (p *plan) userTopic(u int) string { return p.prefix + "/user/" + strconv.Itoa(u) }
func (p *plan) roomTopic(r int) string { return p.prefix + "/room/" + strconv.Itoa(r) }
func (p *plan) connTopic(c int) string { return p.prefix + "/conn/" + strconv.Itoa(c) }

// room returns the first member and size of member m's chat room.
func (p *plan) room(m int) (start, size int) {
	start = m / p.s.RoomSize * p.s.RoomSize
	return start, min(p.s.RoomSize, p.subs-start)
}

// route is where publisher pub's message i goes: topic, stream, sequence
// within the stream, and how many subscribers must receive it.
type route struct {
	topic string
	kind  byte
	seq   uint64
	fan   int64
}

// router returns a function giving the route of each message of publisher
// pub. It precomputes what it can; only unicast builds a topic per message.
func (p *plan) router(pub int) func(i int) route {
	subs := int64(p.subs)
	switch p.s.Name {
	case Fanout, Churn:
		t := p.mainTopic()
		return func(i int) route { return route{t, streamMain, uint64(i), subs} }
	case Fanin:
		t := p.prefix + "/fanin/" + strconv.Itoa(pub)
		fan := subs
		if p.s.Shared {
			fan = 1
		}
		return func(i int) route { return route{t, streamMain, uint64(i), fan} }
	case Unicast:
		users := p.subs
		return func(i int) route {
			// The k-th message to any one user from this publisher has
			// i = offset + k*users, so i/users is that stream's sequence.
			return route{p.userTopic((pub + i) % users), streamMain, uint64(i / users), 1}
		}
	case Chat:
		start, size := p.room(pub)
		roomT := p.roomTopic(pub / p.s.RoomSize)
		privT := p.userTopic(start + (pub-start+1)%size)
		roomFan := int64(size)
		if p.o.MQTT == 5 {
			roomFan-- // No Local
		}
		n := p.s.PrivateEvery
		return func(i int) route {
			if n > 0 && i%n == n-1 {
				return route{privT, streamPrivate, uint64(i / n), 1}
			}
			main := i
			if n > 0 {
				main -= i / n
			}
			return route{roomT, streamMain, uint64(main), roomFan}
		}
	}
	panic(fmt.Sprintf("scenario %q has no publishers", p.s.Name))
}
