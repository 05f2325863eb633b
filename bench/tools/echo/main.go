// Command echo is the upstream server for the zcrelay benchmarks: it accepts
// TCP connections and writes back every byte it reads. Each connection gets
// one goroutine and a small buffer, so it can hold many idle connections.
//
// With -close-after N the server closes a connection itself once it has
// echoed N bytes (the server sends the first FIN). The short-connection test
// uses this so TIME_WAIT lands on the server ports, not on the ephemeral
// ports of the client or of the relay's upstream side, which would otherwise
// run out on loopback after ~28k connections per minute and skew later rows.
package main

import (
	"errors"
	"flag"
	"fmt"
	"log"
	"net"
	"os"
	"time"
)

func serve(c net.Conn, bufSize int, closeAfter int64) {
	defer c.Close()
	buf := make([]byte, bufSize)
	var echoed int64
	for {
		n, err := c.Read(buf)
		if n > 0 {
			if _, werr := c.Write(buf[:n]); werr != nil {
				return
			}
			echoed += int64(n)
			if closeAfter > 0 && echoed >= closeAfter {
				return
			}
		}
		if err != nil {
			// EOF from the peer: close our side too (the deferred Close).
			return
		}
	}
}

func main() {
	addr := flag.String("listen", "127.0.0.1:21003", "address to listen on")
	bufSize := flag.Int("buf", 4096, "per-connection buffer size")
	closeAfter := flag.Int64("close-after", 0, "close the connection after echoing this many bytes (0: never)")
	flag.Parse()

	lc := net.ListenConfig{}
	ln, err := lc.Listen(nil, "tcp", *addr)
	if err != nil {
		log.Fatalf("echo: listen %s: %v", *addr, err)
	}
	fmt.Fprintf(os.Stderr, "echo: listening on %s\n", ln.Addr())
	backoff := 5 * time.Millisecond
	for {
		c, err := ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			// EMFILE and friends: back off and keep going.
			time.Sleep(backoff)
			continue
		}
		go serve(c, *bufSize, *closeAfter)
	}
}
