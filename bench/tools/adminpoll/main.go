// Command adminpoll is N admin API clients polling one path (GET
// /sessions by default) every interval on kept-alive connections, over a
// Unix socket or TCP, for a while. It prints one line: the requests, the
// errors (non-200 answers and transport errors), the answer times (p50,
// p99, max in ms) and the mean body size, so that bench/admin-ab.sh can
// show what polling costs the relay and how fast the answer is.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"sort"
	"sync"
	"time"
)

func main() {
	unix := flag.String("unix", "", "admin Unix socket path")
	tcp := flag.String("tcp", "", "admin TCP address (if no -unix)")
	path := flag.String("path", "/sessions?limit=100000", "path to GET")
	n := flag.Int("n", 50, "clients")
	every := flag.Duration("every", 100*time.Millisecond, "poll interval per client")
	secs := flag.Duration("for", 10*time.Second, "how long to poll")
	flag.Parse()

	dial := func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		if *unix != "" {
			return d.DialContext(ctx, "unix", *unix)
		}
		return d.DialContext(ctx, "tcp", *tcp)
	}
	var mu sync.Mutex
	var times []float64
	var errs, bytes int64
	end := time.Now().Add(*secs)
	var wg sync.WaitGroup
	for i := 0; i < *n; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			cl := &http.Client{Transport: &http.Transport{DialContext: dial, MaxIdleConnsPerHost: 1}, Timeout: 10 * time.Second}
			// Spread the clients over one interval.
			time.Sleep(*every * time.Duration(i) / time.Duration(*n))
			for t := time.Now(); t.Before(end); t = t.Add(*every) {
				if d := time.Until(t); d > 0 {
					time.Sleep(d)
				}
				t0 := time.Now()
				resp, err := cl.Get("http://zcrelay" + *path)
				var nb int64
				if err == nil {
					nb, err = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					if err == nil && resp.StatusCode != 200 {
						err = fmt.Errorf("status %d", resp.StatusCode)
					}
				}
				ms := float64(time.Since(t0).Microseconds()) / 1000
				mu.Lock()
				if err != nil {
					errs++
				} else {
					times = append(times, ms)
					bytes += nb
				}
				mu.Unlock()
			}
		}(i)
	}
	wg.Wait()
	sort.Float64s(times)
	pct := func(p float64) float64 {
		if len(times) == 0 {
			return 0
		}
		return times[int(p*float64(len(times)-1))]
	}
	mean := int64(0)
	if len(times) > 0 {
		mean = bytes / int64(len(times))
	}
	fmt.Printf("requests=%d errors=%d p50_ms=%.2f p99_ms=%.2f max_ms=%.2f mean_bytes=%d\n",
		len(times), errs, pct(0.5), pct(0.99), pct(1), mean)
	if errs > 0 {
		os.Exit(1)
	}
}
