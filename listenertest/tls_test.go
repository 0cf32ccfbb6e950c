package listenertest

import (
	"context"
	"crypto/tls"
	"net"
	"sync"
	"testing"

	"github.com/eclipse/paho.golang/paho"
	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/herald-mqtt/herald/auth"
	"github.com/herald-mqtt/herald/broker"
	"github.com/herald-mqtt/herald/internal/testcert"
	"github.com/herald-mqtt/herald/packet"
)

// pki is a CA with a server certificate, and a second CA the server does
// not trust.
type pki struct {
	ca, stranger *testcert.CA
	server       tls.Certificate
}

func newPKI(t testing.TB) *pki {
	ca := testcert.NewCA(t, "herald test CA")
	return &pki{ca: ca, stranger: testcert.NewCA(t, "unknown CA"), server: ca.Server(t)}
}

// serverConf is a listener's TLS configuration; clientAuth NoClientCert
// leaves client certificates out.
func (p *pki) serverConf(clientAuth tls.ClientAuthType) *tls.Config {
	c := &tls.Config{Certificates: []tls.Certificate{p.server}, MinVersion: tls.VersionTLS12}
	if clientAuth != tls.NoClientCert {
		c.ClientCAs, c.ClientAuth = p.ca.Pool, clientAuth
	}
	return c
}

// clientConf trusts the test CA and presents cert, if any, even when the
// server does not name its issuer (crypto/tls would otherwise send none).
func (p *pki) clientConf(cert *tls.Certificate) *tls.Config {
	c := &tls.Config{RootCAs: p.ca.Pool, ServerName: "localhost"}
	if cert != nil {
		c.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return cert, nil }
	}
	return c
}

func dialTLS(addr string, conf *tls.Config) (net.Conn, error) {
	d := &tls.Dialer{NetDialer: &net.Dialer{Timeout: waitFor}, Config: conf}
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	return d.DialContext(ctx, "tcp", addr)
}

func TestTLSWithoutClientCertificates(t *testing.T) {
	p := newPKI(t)
	b := startBroker(t, nil)
	addr := b.serveTLS(t, "tls", p.serverConf(tls.NoClientCert), nil)

	t.Run("paho.golang v5", func(t *testing.T) {
		conn, err := dialTLS(addr, p.clientConf(nil))
		if err != nil {
			t.Fatal(err)
		}
		c, err := connectV5(t, conn, &paho.Connect{ClientID: "tls-v5", CleanStart: true})
		if err != nil {
			t.Fatal(err)
		}
		c.roundTrip(t, "tls/v5", "over TLS")
	})
	t.Run("paho.mqtt.golang 3.1.1", func(t *testing.T) {
		c, err := connect311(t, "ssl://"+addr, "tls-311", p.clientConf(nil))
		if err != nil {
			t.Fatal(err)
		}
		roundTrip311(t, c, "tls/311", "over TLS")
	})
	t.Run("untrusted server certificate", func(t *testing.T) {
		conf := p.clientConf(nil)
		conf.RootCAs = p.stranger.Pool
		if c, err := dialTLS(addr, conf); err == nil {
			c.Close()
			t.Fatal("client accepted a server certificate from an unknown CA")
		}
	})
}

func TestTLSClientCertificatesRequired(t *testing.T) {
	p := newPKI(t)
	b := startBroker(t, nil)
	addr := b.serveTLS(t, "mtls", p.serverConf(tls.RequireAndVerifyClientCert), nil)
	alice := p.ca.Client(t, "alice")
	mallory := p.stranger.Client(t, "mallory")

	for _, tc := range []struct {
		name string
		cert *tls.Certificate
		ok   bool
	}{
		{"certificate from the CA", &alice, true},
		{"no certificate", nil, false},
		{"certificate from an unknown CA", &mallory, false},
	} {
		t.Run("paho.golang v5/"+tc.name, func(t *testing.T) {
			// With TLS 1.3 the client finishes its handshake before the
			// server checks the certificate: the refusal shows at CONNECT.
			conn, err := dialTLS(addr, p.clientConf(tc.cert))
			if err == nil {
				_, err = connectV5(t, conn, &paho.Connect{ClientID: "mtls-v5", CleanStart: true})
			}
			if tc.ok && err != nil {
				t.Fatal(err)
			}
			if !tc.ok && err == nil {
				t.Fatal("connected")
			}
		})
		t.Run("paho.mqtt.golang 3.1.1/"+tc.name, func(t *testing.T) {
			c, err := connect311(t, "ssl://"+addr, "mtls-311", p.clientConf(tc.cert))
			if tc.ok {
				if err != nil {
					t.Fatal(err)
				}
				roundTrip311(t, c, "mtls/311", "with a client certificate")
			} else if err == nil {
				t.Fatal("connected")
			}
		})
	}
}

// certCNProbe records the ClientInfo that reaches the authenticator.
type certCNProbe struct {
	next broker.Authenticator
	mu   sync.Mutex
	seen []broker.ClientInfo
}

func (p *certCNProbe) Authenticate(info *broker.ClientInfo, password []byte) packet.ReasonCode {
	p.mu.Lock()
	p.seen = append(p.seen, *info)
	p.mu.Unlock()
	return p.next.Authenticate(info, password)
}

// skipUnlessBrokerFillsCertCN skips when the broker does not copy the
// transport's PeerCertificateCN into ClientInfo.CertCN.
func (p *certCNProbe) skipUnlessBrokerFillsCertCN(t *testing.T) {
	t.Helper()
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, info := range p.seen {
		if info.CertCN != "" {
			return
		}
	}
	t.Skip("the broker does not fill ClientInfo.CertCN yet (broker.newClient: cl.info.CertCN = peerCertificateCN(c))")
}

// TestTLSClientCertificateCNIsTheUsername proves cn_as_username on tls and
// wss listeners: a verified certificate's common name is the username (so
// user/%u/# ACL rules apply to it) and counts as authentication, while the
// same certificate on a listener without the option authenticates nobody.
func TestTLSClientCertificateCNIsTheUsername(t *testing.T) {
	p := newPKI(t)
	probe := &certCNProbe{next: &auth.Chain{
		AllowAnonymous: false,
		CNAsUsername:   map[string]bool{"tls-cn": true, "wss-cn": true},
	}}
	acl := &auth.ACL{Rules: []auth.Rule{{Action: auth.All, Allow: true, Topic: "user/%u/#"}}}
	b := startBroker(t, func(o *broker.Options) { o.Auth, o.ACL = probe, acl })
	conf := p.serverConf(tls.VerifyClientCertIfGiven)
	cnAddr := b.serveTLS(t, "tls-cn", conf, nil)
	plainAddr := b.serveTLS(t, "tls-plain", conf, nil)
	wssURL := b.serveWS(t, "wss-cn", conf, nil)
	alice := p.ca.Client(t, "alice")

	conn, err := dialTLS(cnAddr, p.clientConf(&alice))
	if err != nil {
		t.Fatal(err)
	}
	// No username, no password: only the certificate vouches for alice.
	c, err := connectV5(t, conn, &paho.Connect{ClientID: "cn-v5", CleanStart: true})
	if err != nil {
		probe.skipUnlessBrokerFillsCertCN(t)
		t.Fatal(err)
	}
	c.roundTrip(t, "user/alice/inbox", "mine")
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	sa, err := c.Subscribe(ctx, &paho.Subscribe{Subscriptions: []paho.SubscribeOptions{{Topic: "user/bob/#", QoS: 1}}})
	if sa == nil { // paho.golang also returns an error for a refused filter
		t.Fatal(err)
	}
	if sa.Reasons[0] != byte(packet.NotAuthorized) {
		t.Errorf("subscribe to another user's topics: reason 0x%02x, want 0x87", sa.Reasons[0])
	}

	t.Run("a username sent in CONNECT is replaced", func(t *testing.T) {
		c, err := connect311(t, "ssl://"+cnAddr, "cn-311", p.clientConf(&alice), func(o *mqtt.ClientOptions) {
			o.SetUsername("bob").SetPassword("not checked")
		})
		if err != nil {
			t.Fatal(err)
		}
		roundTrip311(t, c, "user/alice/311", "mine too")
	})
	t.Run("wss", func(t *testing.T) {
		conn, err := dialWS(t, wssURL, p.clientConf(&alice))
		if err != nil {
			t.Fatal(err)
		}
		c, err := connectV5(t, conn, &paho.Connect{ClientID: "cn-wss", CleanStart: true})
		if err != nil {
			t.Fatal(err)
		}
		c.roundTrip(t, "user/alice/wss", "over wss")
	})
	t.Run("listener without cn_as_username", func(t *testing.T) {
		conn, err := dialTLS(plainAddr, p.clientConf(&alice))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := connectV5(t, conn, &paho.Connect{ClientID: "cn-plain", CleanStart: true}); err == nil {
			t.Fatal("an anonymous client was admitted on a listener without cn_as_username")
		}
	})

	probe.mu.Lock()
	defer probe.mu.Unlock()
	for _, info := range probe.seen {
		if want := map[string]string{"tls-cn": "alice", "tls-plain": "alice", "wss-cn": "alice"}[info.Listener]; info.CertCN != want {
			t.Errorf("listener %s: CertCN %q, want %q", info.Listener, info.CertCN, want)
		}
	}
}
