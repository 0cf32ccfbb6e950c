package auth_test

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/eclipse/paho.golang/packets"
	"github.com/eclipse/paho.golang/paho"
	mqtt "github.com/eclipse/paho.mqtt.golang"
	"github.com/golang-jwt/jwt/v5"

	"github.com/herald-mqtt/herald/auth"
	"github.com/herald-mqtt/herald/broker"
	"github.com/herald-mqtt/herald/config"
	"github.com/herald-mqtt/herald/internal/mqtttest"
	"github.com/herald-mqtt/herald/packet"
)

// These tests run a real broker on 127.0.0.1 with the authentication and
// ACL that a configuration builds, and talk to it with third-party
// clients: paho.golang (MQTT 5) and paho.mqtt.golang (3.1.1).

const waitFor = 5 * time.Second

var secret = []byte("e2e-secret-0123456789abcdef0123456789")

// startBroker builds auth from cfg and serves a broker; it returns the
// address.
func startBroker(t *testing.T, cfg *config.Config) string {
	t.Helper()
	svc, err := auth.FromConfig(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	opts := mqtttest.Options()
	opts.Auth, opts.ACL = svc.Authenticator(), svc.Authorizer()
	return mqtttest.Serve(t, broker.New(opts), "test").Addr
}

// jwtConfig is a configuration with JWT (HMAC, ACL claim "acl") and the
// operator rules: deny publishing to $SYS, allow users/%u/#, deny the rest.
func jwtConfig(t *testing.T) *config.Config {
	t.Helper()
	cfg, err := config.LoadWithEnv("", nil)
	if err != nil {
		t.Fatal(err)
	}
	no := false
	cfg.Auth.AllowAnonymous = &no
	path := filepath.Join(t.TempDir(), "secret")
	os.WriteFile(path, secret, 0o600)
	cfg.Auth.JWT = config.JWT{Enabled: true, HMACSecretFile: path, UsernameClaim: "sub", ACLClaim: "acl"}
	cfg.ACL.Default = config.ACLDeny
	cfg.ACL.Rules = []config.ACLRule{
		{Action: config.ACLPublish, Allow: false, Topic: "$SYS/#"},
		{Action: config.ACLAll, Allow: true, Topic: "users/%u/#"},
	}
	return cfg
}

func token(t *testing.T, sub string, exp time.Time, extra jwt.MapClaims) string {
	t.Helper()
	c := jwt.MapClaims{"sub": sub, "exp": exp.Unix(), "iat": time.Now().Unix()}
	for k, v := range extra {
		c[k] = v
	}
	s, err := jwt.NewWithClaims(jwt.SigningMethodHS256, c).SignedString(secret)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

type v5Client struct {
	*paho.Client
	msgs        chan *paho.Publish
	disconnects chan *paho.Disconnect
	closed      chan struct{}
}

// dialV5 connects a paho.golang client; the CONNACK is returned also on
// refusal.
func dialV5(t *testing.T, addr, clientID, username, password string) (*v5Client, *paho.Connack, error) {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, waitFor)
	if err != nil {
		t.Fatal(err)
	}
	c := &v5Client{msgs: make(chan *paho.Publish, 10), disconnects: make(chan *paho.Disconnect, 1), closed: make(chan struct{})}
	c.Client = paho.NewClient(paho.ClientConfig{
		ClientID: clientID,
		Conn:     packets.NewThreadSafeConn(conn), // paho writes a packet in several Writes, from more than one goroutine
		OnPublishReceived: []func(paho.PublishReceived) (bool, error){func(pr paho.PublishReceived) (bool, error) {
			c.msgs <- pr.Packet
			return true, nil
		}},
		OnServerDisconnect: func(d *paho.Disconnect) { c.disconnects <- d },
		OnClientError:      func(error) {},
	})
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	cp := &paho.Connect{ClientID: clientID, CleanStart: true, KeepAlive: 30}
	if username != "" {
		cp.Username, cp.UsernameFlag = username, true
	}
	if password != "" {
		cp.Password, cp.PasswordFlag = []byte(password), true
	}
	ack, err := c.Connect(ctx, cp)
	if err != nil {
		conn.Close()
		return nil, ack, err
	}
	t.Cleanup(func() {
		c.Disconnect(&paho.Disconnect{})
		conn.Close()
	})
	return c, ack, nil
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), waitFor)
	t.Cleanup(cancel)
	return c
}

func TestE2EJWTAcceptedWithClaimUsernameAndRules(t *testing.T) {
	addr := startBroker(t, jwtConfig(t))
	tok := token(t, "ann", time.Now().Add(time.Hour), nil)
	c, _, err := dialV5(t, addr, "ann-phone", "", tok)
	if err != nil {
		t.Fatal(err)
	}
	// users/%u/# with the username from the token's sub.
	if _, err := c.Subscribe(ctx(t), &paho.Subscribe{Subscriptions: []paho.SubscribeOptions{{Topic: "users/ann/#", QoS: 1}}}); err != nil {
		t.Fatalf("own topics refused: %v", err)
	}
	if _, err := c.Publish(ctx(t), &paho.Publish{Topic: "users/ann/inbox", QoS: 1, Payload: []byte("hi")}); err != nil {
		t.Fatal(err)
	}
	select {
	case m := <-c.msgs:
		if string(m.Payload) != "hi" {
			t.Fatalf("got %q", m.Payload)
		}
	case <-time.After(waitFor):
		t.Fatal("own message not delivered")
	}
}

func TestE2EJWTRefusals(t *testing.T) {
	addr := startBroker(t, jwtConfig(t))
	forged, _ := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{"sub": "ann", "exp": time.Now().Add(time.Hour).Unix()}).SignedString([]byte("not-the-secret-not-the-secret-not-the-secret"))
	for _, tc := range []struct {
		name, username, password string
		want                     byte
	}{
		{"expired", "", token(t, "ann", time.Now().Add(-time.Minute), nil), 0x86},
		{"forged", "", forged, 0x86},
		{"username differs from sub", "bob", token(t, "ann", time.Now().Add(time.Hour), nil), 0x86},
		{"not a token", "ann", "hunter2", 0x86},
		{"anonymous", "", "", 0x87},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, ack, err := dialV5(t, addr, "c-"+tc.name, tc.username, tc.password)
			if err == nil {
				t.Fatal("connected")
			}
			if ack == nil || ack.ReasonCode != tc.want {
				t.Fatalf("CONNACK %+v (%v), want reason 0x%02X", ack, err, tc.want)
			}
		})
	}
}

// The broker closes the connection when the token's exp passes, telling a
// v5 client 0x87.
func TestE2EJWTExpiryDisconnects(t *testing.T) {
	addr := startBroker(t, jwtConfig(t))
	exp := time.Now().Add(2 * time.Second).Truncate(time.Second).Add(time.Second)
	c, _, err := dialV5(t, addr, "short-lived", "", token(t, "ann", exp, nil))
	if err != nil {
		t.Fatal(err)
	}
	select {
	case d := <-c.disconnects:
		if d.ReasonCode != byte(packet.NotAuthorized) {
			t.Fatalf("DISCONNECT 0x%02X, want 0x87", d.ReasonCode)
		}
		if late := time.Since(exp); late < 0 || late > 2*time.Second {
			t.Fatalf("disconnected %v after exp", late)
		}
	case <-time.After(time.Until(exp) + waitFor):
		t.Fatal("still connected after the token expired")
	}
}

// Denials in v5: SUBACK 0x87 and PUBACK 0x87, by the operator's rules and
// by the token's own rules.
func TestE2EACLDenyV5(t *testing.T) {
	addr := startBroker(t, jwtConfig(t))
	plain, _, err := dialV5(t, addr, "plain", "", token(t, "ann", time.Now().Add(time.Hour), nil))
	if err != nil {
		t.Fatal(err)
	}
	narrowed, _, err := dialV5(t, addr, "narrowed", "", token(t, "bob", time.Now().Add(time.Hour), jwt.MapClaims{
		"acl": map[string]any{"pub": []string{"rooms/1/messages", "$SYS/x"}, "sub": []string{"users/bob/inbox"}},
	}))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name   string
		c      *v5Client
		sub    bool
		topic  string
		denied bool
	}{
		{"other user's topics", plain, true, "users/bob/#", true},
		{"wildcard over other users", plain, true, "users/+/inbox", true},
		{"publish outside the rules", plain, false, "rooms/1/messages", true},
		{"publish to own topic", plain, false, "users/ann/x", false},
		{"token grants a publish the operator does not", narrowed, false, "rooms/1/messages", false},
		{"token grants, operator denies", narrowed, false, "$SYS/x", true},
		{"operator allows, token does not", narrowed, true, "users/bob/#", true},
		{"token grant within the operator's allow", narrowed, true, "users/bob/inbox", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var code byte
			if tc.sub {
				sa, err := tc.c.Subscribe(ctx(t), &paho.Subscribe{Subscriptions: []paho.SubscribeOptions{{Topic: tc.topic, QoS: 1}}})
				if sa == nil {
					t.Fatal(err)
				}
				code = sa.Reasons[0]
			} else {
				pr, err := tc.c.Publish(ctx(t), &paho.Publish{Topic: tc.topic, QoS: 1, Payload: []byte("x")})
				if pr == nil {
					t.Fatal(err)
				}
				code = pr.ReasonCode
			}
			if denied := code == byte(packet.NotAuthorized); denied != tc.denied || (!tc.denied && code >= 0x80) {
				t.Fatalf("reason 0x%02X, want denied=%v (0x87)", code, tc.denied)
			}
		})
	}
}

// 3.1.1 with paho.mqtt.golang: a token is sent with its sub as username
// (3.1.1 has no password without a username); refusals use return codes
// 4 and 5, a denied subscription gets 0x80.
func TestE2EJWTAndACLv311(t *testing.T) {
	addr := startBroker(t, jwtConfig(t))
	dial := func(user, password string) (mqtt.Client, mqtt.Token) {
		o := mqtt.NewClientOptions().AddBroker("tcp://" + addr).SetClientID("v311-" + user).
			SetProtocolVersion(4).SetAutoReconnect(false).SetConnectRetry(false).SetConnectTimeout(waitFor)
		if user != "" {
			o.SetUsername(user).SetPassword(password)
		}
		c := mqtt.NewClient(o)
		tk := c.Connect()
		tk.WaitTimeout(waitFor)
		t.Cleanup(func() { c.Disconnect(0) })
		return c, tk
	}

	if _, tk := dial("ann", token(t, "ann", time.Now().Add(-time.Minute), nil)); tk.(*mqtt.ConnectToken).ReturnCode() != 4 {
		t.Fatalf("expired token: return code %d (%v), want 4", tk.(*mqtt.ConnectToken).ReturnCode(), tk.Error())
	}
	if _, tk := dial("", ""); tk.(*mqtt.ConnectToken).ReturnCode() != 5 {
		t.Fatalf("anonymous: return code %d (%v), want 5", tk.(*mqtt.ConnectToken).ReturnCode(), tk.Error())
	}
	c, tk := dial("ann", token(t, "ann", time.Now().Add(time.Hour), nil))
	if tk.Error() != nil {
		t.Fatal(tk.Error())
	}
	for _, tc := range []struct {
		filter string
		want   byte
	}{
		{"users/ann/#", 1},
		{"users/bob/#", 0x80},
		{"#", 0x80},
	} {
		st := c.Subscribe(tc.filter, 1, nil)
		if !st.WaitTimeout(waitFor) || st.Error() != nil {
			t.Fatalf("subscribe %q: %v", tc.filter, st.Error())
		}
		if got := st.(*mqtt.SubscribeToken).Result()[tc.filter]; got != tc.want {
			t.Errorf("SUBACK for %q: 0x%02X, want 0x%02X", tc.filter, got, tc.want)
		}
	}
}

// A password-file user and the ACL file, through a real broker.
func TestE2EPasswordFileAndACLFile(t *testing.T) {
	dir := t.TempDir()
	cfg, err := config.LoadWithEnv("", nil)
	if err != nil {
		t.Fatal(err)
	}
	no := false
	cfg.Auth.AllowAnonymous = &no
	hash, _ := auth.HashPassword([]byte("pw"), 4)
	cfg.Auth.PasswordFile = filepath.Join(dir, "passwd")
	os.WriteFile(cfg.Auth.PasswordFile, fmt.Appendf(nil, "bob:%s\n", hash), 0o600)
	cfg.Auth.ACLFile = filepath.Join(dir, "acl")
	os.WriteFile(cfg.Auth.ACLFile, []byte("allow all devices/%c/#\ndeny all #\n"), 0o600)
	addr := startBroker(t, cfg)

	if _, ack, err := dialV5(t, addr, "d1", "bob", "wrong"); err == nil || ack.ReasonCode != 0x86 {
		t.Fatalf("wrong password: %+v %v", ack, err)
	}
	c, _, err := dialV5(t, addr, "d1", "bob", "pw")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Publish(ctx(t), &paho.Publish{Topic: "devices/d1/state", QoS: 1, Payload: []byte("on")}); err != nil {
		t.Fatalf("own device topic: %v", err)
	}
	pr, err := c.Publish(ctx(t), &paho.Publish{Topic: "devices/d2/state", QoS: 1, Payload: []byte("on")})
	if pr == nil || pr.ReasonCode != 0x87 || err == nil {
		t.Fatalf("other device's topic: %+v %v", pr, err)
	}
}
