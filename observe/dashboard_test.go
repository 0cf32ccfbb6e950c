package observe

import (
	"context"
	"net/http"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/herald-mqtt/herald/internal/mqtttest"
)

// assetRef finds the src and href attributes of the page.
var assetRef = regexp.MustCompile(`(?:src|href)="([^"]*)"`)

// The dashboard is one page whose every asset Herald serves: no URL
// reaches outside, so it works offline, and the CSP forbids it anyway.
func TestDashboardServesEverythingItself(t *testing.T) {
	r := startRig(t, rigOptions{token: testToken})
	for _, path := range []string{"/", "/dashboard"} {
		code, body, hdr := r.do(t, "GET", path, "")
		if code != http.StatusOK || !strings.HasPrefix(hdr.Get("Content-Type"), "text/html") {
			t.Fatalf("GET %s: %d %s", path, code, hdr.Get("Content-Type"))
		}
		if csp := hdr.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'self'") {
			t.Errorf("GET %s: CSP %q, want default-src 'self'", path, csp)
		}
		page := string(body)
		refs := assetRef.FindAllStringSubmatch(page, -1)
		if len(refs) < 2 {
			t.Fatalf("GET %s: page references %v, want at least the script and style sheet", path, refs)
		}
		for _, m := range refs {
			ref := m[1]
			if strings.HasPrefix(ref, "data:") {
				continue
			}
			if strings.Contains(ref, "//") {
				t.Errorf("GET %s: external reference %q", path, ref)
				continue
			}
			code, asset, _ := r.do(t, "GET", "/"+strings.TrimPrefix(ref, "/"), "")
			if code != http.StatusOK || len(asset) == 0 {
				t.Errorf("GET %s: asset %q: %d", path, ref, code)
			}
			page += string(asset)
		}
		for _, scheme := range []string{"http://", "https://"} {
			if i := strings.Index(page, scheme); i >= 0 {
				t.Errorf("GET %s: page or assets contain %q: …%s…", path, scheme, page[max(0, i-40):min(len(page), i+40)])
			}
		}
	}
}

// The script parses: checked with node when it is installed.
func TestDashboardScriptParses(t *testing.T) {
	node, err := exec.LookPath("node")
	if err != nil {
		t.Skip("node not installed")
	}
	out, err := exec.Command(node, "--check", "assets/app.js").CombinedOutput()
	if err != nil {
		t.Fatalf("node --check assets/app.js: %v\n%s", err, out)
	}
}

// In headless Chromium the page runs its script without errors: it fills
// the numbers from /api/stats and the topic table from /api/topics. With
// no token configured the loopback browser needs none.
func TestDashboardRendersInChromium(t *testing.T) {
	r := startRig(t, rigOptions{})
	c, _ := mqtttest.Connect(t, r.mqtt, mqtttest.V5("viewer"))
	c.SubscribeOne("feed/#", 0)
	dom := renderInChromium(t, r.http.URL+"/")
	for _, want := range []string{
		`class="status live"`,    // /api/stats answered and render ran
		`<td>feed/#</td>`,        // /api/topics answered and the table was built
		`id="connected">1</div>`, // the number came from the API
		`<polyline points="`,     // a sparkline was drawn
		`<form id="login" class="login" hidden="">`,
	} {
		if !strings.Contains(dom, want) {
			t.Errorf("rendered page lacks %s", want)
		}
	}
	if t.Failed() {
		t.Logf("DOM:\n%s", dom)
	}
}

// With a token configured the page asks for it instead of failing.
func TestDashboardAsksForToken(t *testing.T) {
	r := startRig(t, rigOptions{token: testToken})
	dom := renderInChromium(t, r.http.URL+"/dashboard")
	for _, want := range []string{
		`<form id="login" class="login">`, // shown
		`token required`,
	} {
		if !strings.Contains(dom, want) {
			t.Errorf("rendered page lacks %s", want)
		}
	}
	if t.Failed() {
		t.Logf("DOM:\n%s", dom)
	}
}

// renderInChromium loads url in headless Chromium, lets its script run
// for three seconds of virtual time and returns the DOM. Any console
// message (an uncaught exception, a failed load) fails the test. It skips
// when no Chromium can run.
func renderInChromium(t *testing.T, url string) string {
	t.Helper()
	if testing.Short() {
		t.Skip("starts a browser")
	}
	chromium := ""
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			chromium = p
			break
		}
	}
	if chromium == "" {
		t.Skip("no Chromium installed")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, chromium,
		"--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
		"--user-data-dir="+t.TempDir(),
		"--enable-logging=stderr", "--v=0",
		"--virtual-time-budget=3000", "--dump-dom", url)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Skipf("chromium could not run here: %v\n%s", err, stderr.String())
	}
	// Console messages, uncaught exceptions included, go to stderr as
	// CONSOLE lines.
	for _, line := range strings.Split(stderr.String(), "\n") {
		if strings.Contains(line, "CONSOLE") || strings.Contains(line, "Uncaught") {
			t.Errorf("browser console: %s", line)
		}
	}
	return string(out)
}
