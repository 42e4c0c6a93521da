// SPDX-License-Identifier: Apache-2.0
// gotls: a Go crypto/tls HTTP/1.1 server and client for redtap's tests (standard library only,
// built with Debian's golang-go).
//
//	gotls server ADDR CERT KEY        serve HTTPS (HTTP/1.1 only, keep-alive) until killed;
//	                                  prints "ready" once listening
//	gotls client URL N [PAUSE]        N GETs over one keep-alive connection (the server's
//	                                  certificate is not verified: loopback tests); with
//	                                  PAUSE=1, one GET first, then "paused" and wait for a
//	                                  line on stdin before the N; prints "done OK BYTES"
package main

import (
	"bufio"
	"crypto/tls"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
)

func serve(addr, cert, key string) error {
	mux := http.NewServeMux()
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		status := http.StatusOK
		if strings.HasPrefix(r.URL.Path, "/missing") {
			status = http.StatusNotFound
		}
		w.Header().Set("Content-Type", "text/plain")
		w.WriteHeader(status)
		fmt.Fprintf(w, "go %s %s %d\n", r.Method, r.URL.Path, len(body))
	})
	s := &http.Server{
		Addr:    addr,
		Handler: mux,
		// HTTP/1.1 only: no h2 by ALPN.
		TLSNextProto: map[string]func(*http.Server, *tls.Conn, http.Handler){},
	}
	ln, err := tls.Listen("tcp", addr, mustConfig(cert, key))
	if err != nil {
		return err
	}
	fmt.Println("ready")
	return s.Serve(ln)
}

func mustConfig(cert, key string) *tls.Config {
	pair, err := tls.LoadX509KeyPair(cert, key)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	return &tls.Config{Certificates: []tls.Certificate{pair}, NextProtos: []string{"http/1.1"}}
}

func client(url string, n int, pause bool) error {
	tr := &http.Transport{
		TLSClientConfig:     &tls.Config{InsecureSkipVerify: true},
		TLSNextProto:        map[string]func(string, *tls.Conn) http.RoundTripper{},
		MaxIdleConnsPerHost: 1,
		DisableCompression:  true,
	}
	c := &http.Client{Transport: tr}
	ok, bytes := 0, 0
	get := func(i int) error {
		resp, err := c.Get(fmt.Sprintf("%s?i=%d", url, i))
		if err != nil {
			return err
		}
		b, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			return err
		}
		if resp.StatusCode == http.StatusOK {
			ok++
		}
		bytes += len(b)
		return nil
	}
	if pause {
		if err := get(-1); err != nil {
			return err
		}
		ok, bytes = 0, 0
		fmt.Println("paused")
		if _, err := bufio.NewReader(os.Stdin).ReadString('\n'); err != nil && err != io.EOF {
			return err
		}
	}
	for i := 0; i < n; i++ {
		if err := get(i); err != nil {
			return err
		}
	}
	fmt.Printf("done %d %d\n", ok, bytes)
	return nil
}

func main() {
	var err error
	switch {
	case len(os.Args) == 5 && os.Args[1] == "server":
		err = serve(os.Args[2], os.Args[3], os.Args[4])
	case (len(os.Args) == 4 || len(os.Args) == 5) && os.Args[1] == "client":
		n, perr := strconv.Atoi(os.Args[3])
		if perr != nil || n < 0 {
			err = fmt.Errorf("bad count %q", os.Args[3])
			break
		}
		err = client(os.Args[2], n, len(os.Args) == 5 && os.Args[4] == "1")
	default:
		err = fmt.Errorf("usage: gotls server ADDR CERT KEY | gotls client URL N [PAUSE]")
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
