// Command gorelay is the "Go io.Copy" peer in the zcrelay benchmarks: a
// minimal TCP relay that copies each direction with io.Copy between two
// *net.TCPConn (so the Go runtime uses splice(2) on Linux) and forwards a
// half-close with CloseWrite.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"os"
	"sync"
	"time"
)

func pipe(dst, src *net.TCPConn, wg *sync.WaitGroup, abort func()) {
	defer wg.Done()
	_, err := io.Copy(dst, src)
	if err != nil {
		// Reset or other error: tear the whole session down.
		abort()
		return
	}
	// Clean EOF from src: forward the FIN, keep the other direction going.
	dst.CloseWrite()
}

func handle(client *net.TCPConn, upstream string, timeout time.Duration) {
	d := net.Dialer{Timeout: timeout}
	uc, err := d.Dial("tcp", upstream)
	if err != nil {
		client.Close()
		return
	}
	up := uc.(*net.TCPConn)
	var once sync.Once
	abort := func() {
		once.Do(func() {
			client.SetLinger(0)
			up.SetLinger(0)
			client.Close()
			up.Close()
		})
	}
	var wg sync.WaitGroup
	wg.Add(2)
	go pipe(up, client, &wg, abort)
	go pipe(client, up, &wg, abort)
	wg.Wait()
	client.Close()
	up.Close()
}

func main() {
	listen := flag.String("listen", "127.0.0.1:21150", "address to listen on")
	upstream := flag.String("upstream", "127.0.0.1:21001", "upstream address")
	timeout := flag.Duration("connect-timeout", 5*time.Second, "upstream connect timeout")
	flag.Parse()

	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		log.Fatalf("gorelay: listen %s: %v", *listen, err)
	}
	fmt.Fprintf(os.Stderr, "gorelay: %s -> %s\n", ln.Addr(), *upstream)
	tl := ln.(*net.TCPListener)
	for {
		c, err := tl.AcceptTCP()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			time.Sleep(5 * time.Millisecond) // EMFILE etc.
			continue
		}
		go handle(c, *upstream, *timeout)
	}
}
