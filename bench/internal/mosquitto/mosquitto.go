// Package mosquitto starts a Mosquitto broker for tests of herald bench,
// on free loopback ports, skipping the test when Mosquitto is missing.
package mosquitto

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

const debianPath = "/usr/sbin/mosquitto"

// Start runs a Mosquitto broker on a free loopback port for the test's
// lifetime and returns its address; the test is skipped when Mosquitto is
// not installed.
func Start(t testing.TB) string {
	return StartListeners(t, "tcp")["tcp"]
}

// StartListeners runs Mosquitto with one listener per kind ("tcp", "ws",
// "tls", "wss"; TLS with a self-signed certificate for 127.0.0.1) and
// returns each one's target in herald bench's --target syntax.
func StartListeners(t testing.TB, kinds ...string) map[string]string {
	t.Helper()
	path, err := exec.LookPath(debianPath)
	if err != nil {
		if path, err = exec.LookPath("mosquitto"); err != nil {
			t.Skip("mosquitto is not installed")
		}
	}
	// Mosquitto drops root privileges and must still read its files, which
	// t.TempDir's private parent directory would prevent.
	dir, err := os.MkdirTemp("", "herald-bench-mosquitto-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	os.Chmod(dir, 0o755)
	var conf strings.Builder
	conf.WriteString("allow_anonymous true\nmax_queued_messages 100000\n")
	targets := map[string]string{}
	var certs string
	for _, kind := range kinds {
		port := freePort(t)
		fmt.Fprintf(&conf, "listener %d 127.0.0.1\n", port)
		addr := fmt.Sprintf("127.0.0.1:%d", port)
		switch kind {
		case "tcp":
			targets[kind] = addr
		case "ws":
			conf.WriteString("protocol websockets\n")
			targets[kind] = "ws://" + addr + "/mqtt"
		case "tls", "wss":
			if certs == "" {
				certs = writeCert(t, dir)
			}
			conf.WriteString(certs)
			if kind == "wss" {
				conf.WriteString("protocol websockets\n")
				targets[kind] = "wss://" + addr + "/mqtt"
			} else {
				targets[kind] = "tls://" + addr
			}
		}
	}
	confPath := filepath.Join(dir, "mosquitto.conf")
	if err := os.WriteFile(confPath, []byte(conf.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, path, "-c", confPath)
	// The broker must not outlive a test binary that is killed.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	var log strings.Builder
	cmd.Stderr, cmd.Stdout = &log, &log
	if err := cmd.Start(); err != nil {
		cancel()
		t.Skipf("cannot start mosquitto: %v", err)
	}
	t.Cleanup(func() { cancel(); cmd.Wait() })
	for kind, target := range targets {
		addr := target[strings.Index(target, "127."):]
		addr = strings.TrimSuffix(addr, "/mqtt")
		deadline := time.Now().Add(5 * time.Second)
		for {
			c, err := net.DialTimeout("tcp", addr, time.Second)
			if err == nil {
				c.Close()
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("mosquitto did not listen for %s on %s: %v\n%s", kind, addr, err, log.String())
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	return targets
}

func freePort(t testing.TB) int {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// writeCert writes a self-signed certificate for 127.0.0.1 and returns the
// listener lines that use it.
func writeCert(t testing.TB, dir string) string {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "127.0.0.1"},
		IPAddresses:  []net.IP{net.ParseIP("127.0.0.1")},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kb, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644)
	os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), 0o644)
	return fmt.Sprintf("certfile %s\nkeyfile %s\n", certFile, keyFile)
}
