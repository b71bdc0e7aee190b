// Command upstream is the benchmark's backend: it answers every request
// with a small fixed JSON body, as fast as net/http allows.
package main

import (
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"time"
)

var body = []byte(`{"name":"feature","enabled":true,"strategies":[]}` + "\n")

func main() {
	listen := flag.String("listen", "127.0.0.1:0", "address")
	flag.Parse()
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		fmt.Fprintln(os.Stderr, "upstream:", err)
		os.Exit(1)
	}
	fmt.Println(ln.Addr().String()) // the harness reads the bound address
	size := strconv.Itoa(len(body))
	srv := &http.Server{
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			_, _ = io.Copy(io.Discard, r.Body)
			h := w.Header()
			h["Content-Type"] = []string{"application/json"}
			h["Content-Length"] = []string{size}
			_, _ = w.Write(body)
		}),
	}
	if err := srv.Serve(ln); err != nil {
		fmt.Fprintln(os.Stderr, "upstream:", err)
		os.Exit(1)
	}
}
