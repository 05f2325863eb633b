// Command connrate measures short-connection throughput: C workers each loop
// connect -> send SIZE bytes -> read the SIZE-byte echo -> close, for a fixed
// duration, and it prints the completed connections per second.
//
// With -wait-eof the worker reads until the server's EOF before closing, so
// the server (echo -close-after SIZE) closes first; see bench/tools/echo.
// With -payload FILE the bytes sent are the file's (bench/connrate-ab.sh
// sends a captured TLS ClientHello to measure content routing).
package main

import (
	"bytes"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:21003", "echo address (direct or through a relay)")
	conc := flag.Int("c", 50, "concurrent workers")
	dur := flag.Duration("d", 5*time.Second, "test duration")
	size := flag.Int("size", 64, "payload bytes per connection")
	timeout := flag.Duration("timeout", 2*time.Second, "per-connection deadline")
	waitEOF := flag.Bool("wait-eof", false, "after the echo, wait for the server to close before closing")
	payloadFile := flag.String("payload", "", "send this file's bytes (a TLS ClientHello, say) instead of SIZE 'z's")
	flag.Parse()

	payload := bytes.Repeat([]byte("z"), *size)
	if *payloadFile != "" {
		b, err := os.ReadFile(*payloadFile)
		if err != nil || len(b) == 0 {
			fmt.Fprintf(os.Stderr, "connrate: -payload: %v (%d bytes)\n", err, len(b))
			os.Exit(2)
		}
		payload = b
		*size = len(b)
	}
	var ok, failed int64
	var firstErr atomic.Value
	start := time.Now()
	stop := start.Add(*dur)
	var wg sync.WaitGroup
	for i := 0; i < *conc; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			buf := make([]byte, *size)
			d := net.Dialer{Timeout: *timeout}
			for time.Now().Before(stop) {
				err := func() error {
					c, err := d.Dial("tcp", *addr)
					if err != nil {
						return err
					}
					defer c.Close()
					c.SetDeadline(time.Now().Add(*timeout))
					if _, err := c.Write(payload); err != nil {
						return err
					}
					if _, err := io.ReadFull(c, buf); err != nil {
						return err
					}
					if !bytes.Equal(buf, payload) {
						return fmt.Errorf("echo mismatch")
					}
					if *waitEOF {
						var one [1]byte
						n, err := c.Read(one[:])
						if err != io.EOF {
							return fmt.Errorf("expected EOF after echo, got %d bytes, err %v", n, err)
						}
					}
					return nil
				}()
				if err != nil {
					atomic.AddInt64(&failed, 1)
					firstErr.CompareAndSwap(nil, err.Error())
					time.Sleep(10 * time.Millisecond)
					continue
				}
				atomic.AddInt64(&ok, 1)
			}
		}()
	}
	wg.Wait()
	el := time.Since(start).Seconds()
	fe := ""
	if v := firstErr.Load(); v != nil {
		fe = v.(string)
	}
	fmt.Printf("rate=%.0f ok=%d failed=%d secs=%.2f first_error=%q\n",
		float64(ok)/el, ok, failed, el, fe)
	if ok == 0 {
		os.Exit(1)
	}
}
