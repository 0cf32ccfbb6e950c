package bench

import "testing"

func TestConnSubscribeGivesEachClientATopicOfItsOwn(t *testing.T) {
	o := DefaultOptions()
	o.Topics, o.QoS = "hb", 1
	for _, tc := range []struct {
		name      string
		subscribe bool
		want      func(i int) string // "" means no subscription
	}{
		{"without --subscribe", false, func(int) string { return "" }},
		{"with --subscribe", true, func(i int) string { return "hb/conn/" + []string{"0", "1", "2", "3"}[i] }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := newPlan(Scenario{Name: Conn, Clients: 4, Subscribe: tc.subscribe}, o)
			for g := 0; g < p.total; g++ {
				subs := p.subscriptions(p.slot(g))
				want := tc.want(g)
				switch {
				case want == "" && len(subs) != 0:
					t.Errorf("client %d subscribes %v, want nothing", g, subs)
				case want != "" && (len(subs) != 1 || subs[0].Filter != want || subs[0].QoS != 1):
					t.Errorf("client %d subscribes %+v, want %s at QoS 1", g, subs, want)
				}
			}
		})
	}
}

// Fan-in consumers always live in worker 0; with more than one worker the
// publishers are dealt over the others, evenly, and none to worker 0.
func TestFaninShardsLeaveWorkerZeroToConsumers(t *testing.T) {
	p := newPlan(Scenario{Name: Fanin, Subscribers: 2, Publishers: 9}, DefaultOptions())
	for _, shards := range []int{1, 2, 4} {
		count := make([]int, shards)
		for g := 0; g < p.total; g++ {
			sh := p.shardOf(g, shards)
			if g < p.subs && sh != 0 {
				t.Errorf("%d workers: consumer %d in worker %d, want 0", shards, g, sh)
			}
			if g >= p.subs && shards > 1 && sh == 0 {
				t.Errorf("%d workers: publisher %d in worker 0", shards, g)
			}
			count[sh]++
		}
		if shards > 1 {
			for sh := 2; sh < shards; sh++ {
				if d := count[sh] - count[1]; d > 1 || d < -1 {
					t.Errorf("%d workers: publishers per worker %v, want even", shards, count)
				}
			}
		}
	}
}
