//go:build e2e

package e2e

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
)

// TestBehindNginxTLS is latch as it is deployed at a public https URL: nginx
// terminates TLS in front of it (public_url https://...), Chromium signs in
// through nginx, and the upstream verifies the handoff token. It shows the
// session cookie is __Host-latch_session (Secure, HttpOnly, Path=/) and
// that the browser accepts and sends it, that the login form's and
// logout's same-origin checks accept the https origin behind the proxy,
// and that a session reaches a verifying upstream as a token.
func TestBehindNginxTLS(t *testing.T) {
	nginx := need(t, "nginx (Debian's nginx-light)", "nginx", "/usr/sbin/nginx")
	const audience = "e2e-upstream"

	port, nginxPort := freePort(t), freePort(t)
	public := fmt.Sprintf("https://127.0.0.1:%d", nginxPort)
	upURL := startJWTVerifier(t, fmt.Sprintf("http://127.0.0.1:%d", port), audience)
	l := startLatch(t, latchOpts{
		port:     port,
		upstream: upURL,
		public:   public,
		rules:    "policies/policy.csv",
		protect:  []string{"/api/admin/"},
		users:    []person{viewer},
		extra:    "auth:\n  handoff: [\"/api/admin/ jwt\"]\n  handoff_jwt:\n    audience: " + audience + "\n",
	})

	pool := startNginxTLS(t, nginx, nginxPort, l.url)

	b := newBrowser(t, "viewer", chromedp.Flag("ignore-certificate-errors", true))
	b.do("login page through nginx",
		chromedp.Navigate(public+"/.latch/login?rd=/api/admin/features"),
		chromedp.WaitVisible(`input[name=email]`))
	b.do("sign in",
		chromedp.SendKeys(`input[name=email]`, viewer.email),
		chromedp.SendKeys(`input[name=password]`, viewer.password),
		chromedp.Click(`button[type=submit]`),
	)
	b.waitFor("the upstream's answer", `location.pathname === "/api/admin/features" && (document.body.innerText || "").includes("claims")`, 30*time.Second)
	var got verified
	if err := json.Unmarshal([]byte(b.text()), &got); err != nil {
		t.Fatalf("the page is not the verifier's answer: %v: %q", err, b.text())
	}
	if got.Claims.Sub != viewer.email || got.UserHeader != viewer.email {
		t.Errorf("through nginx with the session: verified sub %q, X-Latch-User %q, want %q", got.Claims.Sub, got.UserHeader, viewer.email)
	}
	if strings.Contains(got.Cookie, "latch_session") {
		t.Errorf("the session cookie reached the upstream: Cookie %q", got.Cookie)
	}

	session := sessionCookies(t, b, public)
	if len(session) != 1 || session[0].Name != "__Host-latch_session" {
		t.Fatalf("session cookies %v, want exactly __Host-latch_session", cookieNames(session))
	}
	if c := session[0]; !c.Secure || !c.HTTPOnly || c.Path != "/" || c.SameSite != network.CookieSameSiteLax {
		t.Errorf("__Host-latch_session: Secure %v, HttpOnly %v, Path %q, SameSite %q; want true, true, /, Lax", c.Secure, c.HTTPOnly, c.Path, c.SameSite)
	}
	if me := b.pageFetch("GET", "/.latch/me", nil); me.Status != http.StatusOK || !strings.Contains(me.Body, viewer.email) {
		t.Errorf("GET /.latch/me through nginx: %d %s, want 200 naming %s", me.Status, me.Body, viewer.email)
	}

	// Logout's same-origin check accepts the https origin behind nginx.
	if out := b.pageFetch("POST", "/.latch/logout", nil); out.Status != http.StatusNoContent {
		t.Fatalf("POST /.latch/logout through nginx: %d %s, want 204", out.Status, out.Body)
	}
	if me := b.pageFetch("GET", "/.latch/me", nil); me.Status != http.StatusUnauthorized {
		t.Errorf("GET /.latch/me after logout: %d %s, want 401", me.Status, me.Body)
	}
	if left := sessionCookies(t, b, public); len(left) != 0 {
		t.Errorf("after logout the browser still holds %v", cookieNames(left))
	}

	// The certificate nginx serves is the test's: the page was https.
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	resp, err := client.Get(public + "/.latch/login")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.TLS == nil || resp.StatusCode != http.StatusOK {
		t.Errorf("GET %s/.latch/login: %s, TLS %v; want 200 over TLS", public, resp.Status, resp.TLS != nil)
	}
}

// sessionCookies are the browser's cookies for u whose name holds
// latch_session.
func sessionCookies(t *testing.T, b *browser, u string) []*network.Cookie {
	t.Helper()
	ctx, cancel := b.within(10 * time.Second)
	defer cancel()
	res, err := chromedp.Call(ctx, network.GetCookies, network.GetCookiesParams{URLs: []string{u}})
	if err != nil {
		t.Fatalf("cookies: %v", err)
	}
	var out []*network.Cookie
	for _, c := range res.Cookies {
		if strings.Contains(c.Name, "latch_session") {
			out = append(out, c)
		}
	}
	return out
}

func cookieNames(cs []*network.Cookie) []string {
	var names []string
	for _, c := range cs {
		names = append(names, c.Name)
	}
	return names
}

// startNginxTLS runs nginx on 127.0.0.1:port with a fresh self-signed
// certificate for 127.0.0.1, proxying to backend as a TLS-terminating
// reverse proxy does, until the test ends. It returns a pool trusting the
// certificate.
func startNginxTLS(t *testing.T, nginx string, port int, backend string) *x509.CertPool {
	t.Helper()
	dir := t.TempDir()
	certPEM, keyPEM := selfSigned(t)
	cert, key := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(cert, certPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(key, keyPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	// One process (master_process off), so no worker changes user and
	// every file stays in dir.
	conf := fmt.Sprintf(`daemon off;
master_process off;
pid %[1]s/nginx.pid;
error_log stderr info;
events { worker_connections 256; }
http {
	access_log off;
	client_body_temp_path %[1]s/client_body;
	proxy_temp_path %[1]s/proxy;
	fastcgi_temp_path %[1]s/fastcgi;
	uwsgi_temp_path %[1]s/uwsgi;
	scgi_temp_path %[1]s/scgi;
	server {
		listen 127.0.0.1:%[2]d ssl;
		ssl_certificate %[3]s;
		ssl_certificate_key %[4]s;
		location / {
			proxy_pass %[5]s;
			proxy_http_version 1.1;
			proxy_set_header Host $http_host;
			proxy_set_header X-Forwarded-For $remote_addr;
			proxy_set_header X-Forwarded-Proto https;
		}
	}
}
`, dir, port, cert, key, backend)
	path := filepath.Join(dir, "nginx.conf")
	if err := os.WriteFile(path, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(outDir(t), "nginx.conf"), []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	p := startProc(t, "nginx", 0, 5*time.Second, exec.Command(nginx, "-p", dir, "-c", path, "-e", "stderr"))
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(certPEM)
	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	p.waitHTTPWith(t, client, fmt.Sprintf("https://127.0.0.1:%d/.latch/login", port), http.StatusOK, 30*time.Second)
	return pool
}

// selfSigned is a P-256 certificate for 127.0.0.1, valid for an hour, and
// its key, in PEM.
func selfSigned(t *testing.T) (certPEM, keyPEM []byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "127.0.0.1"},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
		NotBefore:    time.Now().Add(-time.Minute),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder})
}
