// Command bareproxy is the baseline for latch's proxy overhead: a bare
// httputil.ReverseProxy (Rewrite with SetURL and SetXForwarded) over the
// same tuned transport and buffer pool latch uses (proxy.NewTransport,
// proxy.BufferPool), with no authentication, policy, metrics or logging. With --pprof-listen it serves
// net/http/pprof there too (a separate listener, as latch's admin port), so
// the harness can profile the baseline the way it profiles latch.
package main

import (
	"flag"
	"fmt"
	"net"
	"net/http"
	"net/http/httputil"
	"net/http/pprof"
	"net/url"
	"os"
	"time"

	"github.com/latch-dev/latch/proxy"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:0", "address")
	upstream := flag.String("upstream", "", "backend URL")
	pprofListen := flag.String("pprof-listen", "", "serve /debug/pprof/ on this address too")
	flag.Parse()
	u, err := url.Parse(*upstream)
	if err != nil || u.Host == "" {
		fmt.Fprintln(os.Stderr, "bareproxy: --upstream must be a URL")
		os.Exit(2)
	}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		fmt.Fprintln(os.Stderr, "bareproxy:", err)
		os.Exit(1)
	}
	if *pprofListen != "" {
		mux := http.NewServeMux()
		mux.HandleFunc("GET /debug/pprof/", pprof.Index)
		mux.HandleFunc("GET /debug/pprof/profile", pprof.Profile)
		pl, err := net.Listen("tcp", *pprofListen)
		if err != nil {
			fmt.Fprintln(os.Stderr, "bareproxy:", err)
			os.Exit(1)
		}
		go func() { _ = http.Serve(pl, mux) }()
	}
	fmt.Println(ln.Addr().String())
	rp := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(u)
			pr.SetXForwarded()
		},
		// The same defaults latch's config gives it, and the same pool of
		// body-copy buffers.
		Transport:  proxy.NewTransport(proxy.TransportOptions{}),
		BufferPool: proxy.BufferPool(),
	}
	srv := &http.Server{Handler: rp, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 90 * time.Second,
		MaxHeaderBytes: 64 << 10}
	if err := srv.Serve(ln); err != nil {
		fmt.Fprintln(os.Stderr, "bareproxy:", err)
		os.Exit(1)
	}
}
