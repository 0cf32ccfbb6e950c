package bench

import (
	"context"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/herald-mqtt/herald/bench/internal/herald"
	"github.com/herald-mqtt/herald/bench/internal/mosquitto"
)

func TestTransportsTLSAndWebSocketAgainstMosquitto(t *testing.T) {
	targets := mosquitto.StartListeners(t, "tcp", "ws", "tls", "wss")
	for _, kind := range []string{"ws", "tls", "wss"} {
		t.Run(kind, func(t *testing.T) {
			o := quick(targets[kind])
			o.Insecure = true // self-signed
			o.QoS = 1
			r := runScenario(t, Scenario{Name: Fanout, Subscribers: 10, Publishers: 1}, o)
			if !r.Pass || r.Counters.Delivered != r.Counters.Published*10 || r.Counters.Published == 0 {
				t.Fatalf("pass %v, published %d, delivered %d", r.Pass, r.Counters.Published, r.Counters.Delivered)
			}
		})
	}
	t.Run("round-robin over all four", func(t *testing.T) {
		o := quick(targets["tcp"])
		o.Targets = []string{targets["tcp"], targets["ws"], targets["tls"], targets["wss"]}
		o.Insecure = true
		r := runScenario(t, Scenario{Name: Unicast, Subscribers: 12, Publishers: 2}, o)
		if !r.Pass {
			t.Fatal("verdict FAIL")
		}
	})
	t.Run("certificate verified by default", func(t *testing.T) {
		o := quick(targets["tls"])
		r := runScenario(t, Scenario{Name: Conn, Clients: 2}, o)
		if r.Pass || r.Errors["connect: tls"] != 2 {
			t.Fatalf("a self-signed broker was accepted without --insecure: errors %v", r.Errors)
		}
	})
}

func TestSourceIPsSpreadClientsOverAddresses(t *testing.T) {
	target := mosquitto.Start(t)
	// Count the source addresses the broker sees, through a relay.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	seen := make(chan string, 100)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			seen <- c.RemoteAddr().(*net.TCPAddr).IP.String()
			go relay(c, target)
		}
	}()
	defer ln.Close()
	o := quick(ln.Addr().String())
	o.SourceIPs = []string{"127.0.0.2-127.0.0.4"}
	r := runScenario(t, Scenario{Name: Conn, Clients: 9}, o)
	if !r.Pass {
		t.Fatal("verdict FAIL")
	}
	count := map[string]int{}
	for i := 0; i < 9; i++ {
		count[<-seen]++
	}
	for _, ip := range []string{"127.0.0.2", "127.0.0.3", "127.0.0.4"} {
		if count[ip] != 3 {
			t.Errorf("source addresses used %v: want 3 each of 127.0.0.2-4", count)
			break
		}
	}
}

func relay(c net.Conn, target string) {
	defer c.Close()
	up, err := net.Dial("tcp", target)
	if err != nil {
		return
	}
	defer up.Close()
	go func() { copyConn(up, c) }()
	copyConn(c, up)
}

func copyConn(dst, src net.Conn) {
	buf := make([]byte, 4096)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			if _, err := dst.Write(buf[:n]); err != nil {
				return
			}
		}
		if err != nil {
			dst.Close()
			return
		}
	}
}

func TestRemoteWorkersOverTCP(t *testing.T) {
	target := mosquitto.Start(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var addrs []string
	for i := 0; i < 2; i++ {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addrs = append(addrs, ln.Addr().String())
		go ListenWorkers(ctx, ln, t.Logf)
	}
	o := quick(target)
	o.QoS = 2
	o.Workers = addrs
	r := runScenario(t, Scenario{Name: Chat, Subscribers: 12, RoomSize: 4}, o)
	if !r.Pass || r.Workers != 2 || r.Self.Processes != 2 {
		t.Fatalf("pass %v, workers %d, processes %d", r.Pass, r.Workers, r.Self.Processes)
	}
}

func TestParseSourceIPs(t *testing.T) {
	ips, err := parseSourceIPs([]string{"127.0.0.254-127.0.1.1,10.0.0.1"})
	if err != nil || len(ips) != 5 || ips[2].String() != "127.0.1.0" || ips[4].String() != "10.0.0.1" {
		t.Errorf("got %v, %v", ips, err)
	}
	for _, bad := range []string{"127.0.0.5-127.0.0.1", "::1", "127.0.0.1-x"} {
		if _, err := parseSourceIPs([]string{bad}); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

// TestConnectWindowBoundsAttemptsInProgress: with --connect-window 3 no
// more than three connections are ever between dial and CONNACK, though
// the connect rate would start all twelve at once; the relay in front of
// the broker holds every new connection for 30 ms before relaying it.
func TestConnectWindowBoundsAttemptsInProgress(t *testing.T) {
	target := herald.Start(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	var holding, most atomic.Int32
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				n := holding.Add(1)
				for m := most.Load(); n > m && !most.CompareAndSwap(m, n); m = most.Load() {
				}
				time.Sleep(30 * time.Millisecond)
				holding.Add(-1)
				relay(c, target)
			}()
		}
	}()
	o := quick(ln.Addr().String())
	o.ConnectRate = 1e6
	o.ConnectWindow = 3
	r := runScenario(t, Scenario{Name: Conn, Clients: 12}, o)
	if !r.Pass || r.Counters.Connected != 12 {
		t.Fatalf("verdict pass=%v, %d of 12 connected", r.Pass, r.Counters.Connected)
	}
	if m := most.Load(); m > 3 || m < 2 {
		t.Errorf("at most %d connections were held at once; want the window, 3 (and more than one)", m)
	}
}
