// Command idle opens N connections to an echo server (usually through a
// relay), proves each one reaches the server with a 1-byte round trip, then
// holds them all idle. It prints one "ready ..." line on stdout when done and
// keeps the connections open until SIGTERM/SIGINT, stdin EOF (with -stdin),
// or -hold expires; then it closes them and exits.
package main

import (
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:21003", "echo address")
	n := flag.Int("n", 9000, "connections to open")
	conc := flag.Int("c", 64, "concurrent dialers")
	timeout := flag.Duration("timeout", 3*time.Second, "per-connection connect+round-trip deadline")
	hold := flag.Duration("hold", 120*time.Second, "maximum time to hold the connections")
	useStdin := flag.Bool("stdin", false, "also release when stdin reaches EOF")
	flag.Parse()

	conns := make([]net.Conn, *n)
	var next, failed int64 = -1, 0
	var firstErr atomic.Value
	start := time.Now()
	var wg sync.WaitGroup
	for w := 0; w < *conc; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			d := net.Dialer{Timeout: *timeout}
			b := []byte{'i'}
			rb := make([]byte, 1)
			for {
				i := atomic.AddInt64(&next, 1)
				if i >= int64(*n) {
					return
				}
				c, err := d.Dial("tcp", *addr)
				if err == nil {
					c.SetDeadline(time.Now().Add(*timeout))
					if _, err = c.Write(b); err == nil {
						_, err = io.ReadFull(c, rb)
					}
					c.SetDeadline(time.Time{})
					if err != nil {
						c.Close()
					}
				}
				if err != nil {
					atomic.AddInt64(&failed, 1)
					firstErr.CompareAndSwap(nil, err.Error())
					continue
				}
				conns[i] = c
			}
		}()
	}
	wg.Wait()
	held := 0
	for _, c := range conns {
		if c != nil {
			held++
		}
	}
	fe := ""
	if v := firstErr.Load(); v != nil {
		fe = v.(string)
	}
	fmt.Printf("ready held=%d failed=%d secs=%.2f first_error=%q\n",
		held, failed, time.Since(start).Seconds(), fe)
	os.Stdout.Sync()

	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	done := make(chan struct{})
	if *useStdin {
		go func() { io.Copy(io.Discard, os.Stdin); close(done) }()
	}
	select {
	case <-sig:
	case <-done:
	case <-time.After(*hold):
	}
	for _, c := range conns {
		if c != nil {
			c.Close()
		}
	}
}
