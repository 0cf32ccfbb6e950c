package e2e

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// mosquittoSub runs mosquitto_sub with args (plus -d, so the SUBACK line
// tells when it is subscribed), waits for the SUBACK and returns a channel
// of the lines printed with the "MSG|" prefix.
func mosquittoSub(t *testing.T, addr string, args ...string) <-chan string {
	t.Helper()
	host, port, _ := net.SplitHostPort(addr)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	// stdbuf: mosquitto_sub block-buffers a pipe, and the SUBACK line must
	// arrive before anything is published.
	argv := append([]string{"-h", host, "-p", port, "-d", "-W", "8"}, args...)
	cmd := exec.CommandContext(ctx, "stdbuf", append([]string{"-oL", "mosquitto_sub"}, argv...)...)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = cmd.Stdout
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cancel(); cmd.Wait() })
	subscribed := make(chan struct{})
	lines := make(chan string, 16)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(out)
		once := false
		for sc.Scan() {
			l := sc.Text()
			if !once && strings.Contains(l, "SUBACK") {
				once = true
				close(subscribed)
			}
			if rest, ok := strings.CutPrefix(l, "MSG|"); ok {
				lines <- rest
			}
		}
	}()
	select {
	case <-subscribed:
	case <-time.After(waitFor):
		t.Fatalf("mosquitto_sub %v: no SUBACK", args)
	}
	return lines
}

func mosquittoPub(t *testing.T, addr string, args ...string) {
	t.Helper()
	host, port, _ := net.SplitHostPort(addr)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "mosquitto_pub", append([]string{"-h", host, "-p", port}, args...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("mosquitto_pub %v: %v\n%s", args, err, out)
	}
}

func nextLine(t *testing.T, lines <-chan string) string {
	t.Helper()
	select {
	case l, ok := <-lines:
		if !ok {
			t.Fatal("mosquitto_sub exited without the message")
		}
		return l
	case <-time.After(waitFor):
		t.Fatal("mosquitto_sub: no message")
		return ""
	}
}

// The real mosquitto_pub and mosquitto_sub (Debian mosquitto-clients)
// against Herald: QoS 0/1/2 at MQTT 3.1, 3.1.1 and 5, retained messages,
// and MQTT 5 properties passed through.
func TestMosquittoClients(t *testing.T) {
	t.Parallel()
	for _, bin := range []string{"mosquitto_pub", "mosquitto_sub", "stdbuf"} {
		if _, err := exec.LookPath(bin); err != nil {
			t.Skipf("%s not in PATH (install mosquitto-clients and coreutils)", bin)
		}
	}
	b := startBroker(t, nil)
	for _, ver := range []string{"mqttv31", "mqttv311", "mqttv5"} {
		for qos := 0; qos <= 2; qos++ {
			t.Run(fmt.Sprintf("%s-qos%d", ver, qos), func(t *testing.T) {
				t.Parallel()
				topic := fmt.Sprintf("mosq/%s/%d", ver, qos)
				q := fmt.Sprint(qos)
				lines := mosquittoSub(t, b.Addr, "-V", ver, "-q", q, "-t", topic, "-C", "1", "-F", "MSG|%t|%p|%q|%r")
				mosquittoPub(t, b.Addr, "-V", ver, "-q", q, "-t", topic, "-m", "hello "+ver)
				if got, want := nextLine(t, lines), fmt.Sprintf("%s|hello %s|%d|0", topic, ver, qos); got != want {
					t.Fatalf("got %q, want %q", got, want)
				}
			})
		}
	}
	t.Run("retained", func(t *testing.T) {
		t.Parallel()
		mosquittoPub(t, b.Addr, "-q", "1", "-r", "-t", "mosq/retained", "-m", "kept")
		for _, ver := range []string{"mqttv311", "mqttv5"} {
			lines := mosquittoSub(t, b.Addr, "-V", ver, "-q", "1", "-t", "mosq/retained", "-C", "1", "-F", "MSG|%t|%p|%r")
			if got := nextLine(t, lines); got != "mosq/retained|kept|1" {
				t.Fatalf("%s: got %q", ver, got)
			}
		}
	})
	t.Run("v5-properties", func(t *testing.T) {
		t.Parallel()
		lines := mosquittoSub(t, b.Addr, "-V", "mqttv5", "-q", "2", "-t", "mosq/props", "-C", "1",
			"-F", "MSG|%t|%p|%C|%R|%P|%F|%E")
		mosquittoPub(t, b.Addr, "-V", "mqttv5", "-q", "2", "-t", "mosq/props", "-m", "{}",
			"-D", "publish", "content-type", "application/json",
			"-D", "publish", "response-topic", "mosq/reply",
			"-D", "publish", "user-property", "k", "v",
			"-D", "publish", "payload-format-indicator", "1",
			"-D", "publish", "message-expiry-interval", "60")
		got := nextLine(t, lines)
		parts := strings.Split(got, "|")
		if len(parts) != 7 || parts[0] != "mosq/props" || parts[1] != "{}" || parts[2] != "application/json" ||
			parts[3] != "mosq/reply" || parts[4] != "k:v" || parts[5] != "1" || (parts[6] != "60" && parts[6] != "59") {
			t.Fatalf("got %q", got)
		}
	})
}
