package listenertest

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/eclipse/paho.golang/paho"
)

// browserDir holds the npm project of the browser proof: mqtt.js and
// playwright-core at exact versions, the test page and the driver script.
const browserDir = "browser"

// chromiumPath is Debian's chromium unless $CHROMIUM names another.
func chromiumPath() string {
	if p := os.Getenv("CHROMIUM"); p != "" {
		return p
	}
	return "/usr/bin/chromium"
}

// npmInstall installs browserDir's locked dependencies unless the
// installed tree is already newer than the lockfile.
func npmInstall(t *testing.T) {
	t.Helper()
	lock, err := os.Stat(filepath.Join(browserDir, "package-lock.json"))
	if err != nil {
		t.Fatal(err)
	}
	if inst, err := os.Stat(filepath.Join(browserDir, "node_modules", ".package-lock.json")); err == nil && !inst.ModTime().Before(lock.ModTime()) {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "npm", "ci", "--no-audit", "--no-fund")
	cmd.Dir = browserDir
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("npm ci: %v\n%s", err, out)
	}
}

// TestBrowserMQTTjsOverWebSocket proves that a browser speaks MQTT to
// Herald: mqtt.js, from npm, runs in headless Chromium on a page served
// from another origin, connects over ws with the "mqtt" subprotocol,
// subscribes, receives its own QoS 1 message, receives a message that a Go
// client (paho.golang over TCP) publishes to it, and answers that client.
func TestBrowserMQTTjsOverWebSocket(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a browser")
	}
	for _, tool := range []string{"node", "npm"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s not installed", tool)
		}
	}
	if out, err := exec.Command("node", "-p", "process.versions.node.split('.')[0] >= 20").Output(); err != nil || !bytes.HasPrefix(out, []byte("true")) {
		t.Skip("playwright-core needs node 20 or later")
	}
	if _, err := os.Stat(chromiumPath()); err != nil {
		t.Skipf("chromium not installed (apt-get install chromium, or set CHROMIUM): %v", err)
	}
	npmInstall(t)

	b := startBroker(t, nil)
	wsURL := b.serveWS(t, "ws", nil, nil)
	tcpAddr := b.serveTCP(t, "tcp", nil)
	pages := http.NewServeMux()
	pages.HandleFunc("/{$}", func(w http.ResponseWriter, r *http.Request) {
		http.ServeFile(w, r, filepath.Join(browserDir, "page.html"))
	})
	pages.HandleFunc("/mqtt.min.js", func(w http.ResponseWriter, r *http.Request) {
		http.ServeFile(w, r, filepath.Join(browserDir, "node_modules", "mqtt", "dist", "mqtt.min.js"))
	})
	site := httptest.NewServer(pages)
	t.Cleanup(site.Close)

	for _, version := range []int{5, 4} {
		t.Run(fmt.Sprintf("MQTT protocol level %d", version), func(t *testing.T) {
			token := fmt.Sprintf("v%d-%d", version, time.Now().UnixNano())
			conn, err := dialTCP(tcpAddr)
			if err != nil {
				t.Fatal(err)
			}
			goSide, err := connectV5(t, conn, &paho.Connect{ClientID: "go-" + token, CleanStart: true})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := goSide.Subscribe(ctxT(t), &paho.Subscribe{Subscriptions: []paho.SubscribeOptions{{Topic: "browser/to-go/" + token, QoS: 1}}}); err != nil {
				t.Fatal(err)
			}

			ctx, cancel := context.WithTimeout(context.Background(), 50*time.Second)
			defer cancel()
			page := site.URL + "/?" + url.Values{"broker": {wsURL}, "token": {token}, "version": {fmt.Sprint(version)}}.Encode()
			shot := filepath.Join(t.TempDir(), "page.png")
			if dir := os.Getenv("HERALD_BROWSER_SCREENSHOTS"); dir != "" {
				shot = filepath.Join(dir, fmt.Sprintf("browser-mqtt%d.png", version))
			}
			cmd := exec.CommandContext(ctx, "node", "run.js", page, shot)
			cmd.Dir = browserDir
			var stdout, stderr bytes.Buffer
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			ran := make(chan error, 1)
			go func() { ran <- cmd.Wait() }()

			// The browser says "ready" once subscribed; Go then publishes to
			// it and expects the browser's answer.
			sent := "hello from Go " + token
			for _, want := range []string{"ready", "got: " + sent} {
				select {
				case m := <-goSide.msgs:
					if string(m.Payload) != want {
						t.Fatalf("from the browser: %q, want %q", m.Payload, want)
					}
				case err := <-ran:
					t.Fatalf("browser run ended (%v) before sending %q\nstdout: %s\nstderr: %s", err, want, stdout.String(), stderr.String())
				case <-ctx.Done():
					t.Fatalf("no %q from the browser\nstderr: %s", want, stderr.String())
				}
				if want == "ready" {
					if _, err := goSide.Publish(ctxT(t), &paho.Publish{Topic: "browser/to-browser/" + token, QoS: 1, Payload: []byte(sent)}); err != nil {
						t.Fatal(err)
					}
				}
			}
			if err := <-ran; err != nil {
				t.Fatalf("node run.js: %v\nstdout: %s\nstderr: %s", err, stdout.String(), stderr.String())
			}
			t.Logf("page: %s", bytes.TrimSpace(stdout.Bytes()))
			t.Logf("screenshot: %s", shot)
		})
	}
}
