// Command procstat prints resource counters for a process and all of its
// live descendants, as one line of key=value pairs:
//
//	ticks   sum of utime+stime+cutime+cstime (clock ticks) over the tree;
//	        threads are included by /proc/PID/stat, reaped children by cutime/cstime
//	rss_kib sum of VmRSS over the tree
//	pss_kib sum of Pss (smaps_rollup) over the tree (shared pages split)
//	fds     open file descriptors over the tree
//	pipes   of those, how many are pipes (readlink gives "pipe:[...]")
//	procs, threads
package main

import (
	"bufio"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

type stat struct {
	ppid, ticks, threads int64
}

func readStat(pid int) (stat, bool) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return stat{}, false
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return stat{}, false
	}
	f := strings.Fields(s[i+1:])
	// f[0]=state(3) f[1]=ppid(4) ... utime(14)=f[11] stime=f[12] cutime=f[13] cstime=f[14] num_threads(20)=f[17]
	if len(f) < 18 {
		return stat{}, false
	}
	num := func(k int) int64 { v, _ := strconv.ParseInt(f[k], 10, 64); return v }
	return stat{ppid: num(1), ticks: num(11) + num(12) + num(13) + num(14), threads: num(17)}, true
}

func kibField(path, key string) int64 {
	fh, err := os.Open(path)
	if err != nil {
		return 0
	}
	defer fh.Close()
	sc := bufio.NewScanner(fh)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, key) {
			f := strings.Fields(line[len(key):])
			if len(f) > 0 {
				v, _ := strconv.ParseInt(f[0], 10, 64)
				return v
			}
		}
	}
	return 0
}

func main() {
	root := flag.Int("pid", 0, "root process id")
	flag.Parse()
	if *root <= 0 {
		fmt.Fprintln(os.Stderr, "procstat: -pid required")
		os.Exit(2)
	}
	// Map of every process to its parent, to find the tree.
	all := map[int]stat{}
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if st, ok := readStat(pid); ok {
			all[pid] = st
		}
	}
	if _, ok := all[*root]; !ok {
		fmt.Fprintf(os.Stderr, "procstat: no process %d\n", *root)
		os.Exit(1)
	}
	kids := map[int][]int{}
	for pid, st := range all {
		kids[int(st.ppid)] = append(kids[int(st.ppid)], pid)
	}
	var tree []int
	queue := []int{*root}
	for len(queue) > 0 {
		p := queue[0]
		queue = queue[1:]
		tree = append(tree, p)
		queue = append(queue, kids[p]...)
	}
	var ticks, threads, rss, pss, fds, pipes int64
	for _, p := range tree {
		st := all[p]
		ticks += st.ticks
		threads += st.threads
		rss += kibField(fmt.Sprintf("/proc/%d/status", p), "VmRSS:")
		pss += kibField(fmt.Sprintf("/proc/%d/smaps_rollup", p), "Pss:")
		dir := fmt.Sprintf("/proc/%d/fd", p)
		fe, err := os.ReadDir(dir)
		if err != nil {
			continue
		}
		for _, e := range fe {
			fds++
			if t, err := os.Readlink(filepath.Join(dir, e.Name())); err == nil && strings.HasPrefix(t, "pipe:") {
				pipes++
			}
		}
	}
	fmt.Printf("ticks=%d rss_kib=%d pss_kib=%d fds=%d pipes=%d procs=%d threads=%d\n",
		ticks, rss, pss, fds, pipes, len(tree), threads)
}
