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
