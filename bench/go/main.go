// Go's variant of every benchmark in gort's suite (see bench/src/lib.rs
// for the protocol): `gortbench BENCH SIZE` runs one benchmark once and
// prints `RESULT <row> <value> <unit>` lines. Standard library only.
package main

import (
	"fmt"
	"os"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

type row struct {
	suffix string
	value  float64
	unit   string
}

var benches = map[string]func(n int) []row{
	"spawn_join":      spawnJoin,
	"seq_spawn":       seqSpawn,
	"ping_pong":       pingPong,
	"ping_pong_cross": pingPong, // Go moves goroutines freely: the same program
	"dispatcher":      dispatcher,
	"syscall":         syscallRow,
	"chan_buf_1x1":    func(n int) []row { return chanBuf(n, 1) },
	"chan_buf_4x4":    func(n int) []row { return chanBuf(n, 4) },
	"select4":         select4,
	"gosched2":        func(n int) []row { return gosched(n, 2) },
	"gosched100":      func(n int) []row { return gosched(n, 100) },
	"mutex8":          mutex8,
	"waitgroup":       waitgroup,
	"sleep100k":       sleep100k,
	"sieve":           sieve,
	"parked1m":        parked1m,
	"binary_trees":    binaryTrees,
	"gc_stall":        gcStall,
	"gc_mark":         gcMark,
}

func main() {
	if len(os.Args) == 2 && os.Args[1] == "list" {
		for name := range benches {
			fmt.Println(name)
		}
		return
	}
	if len(os.Args) != 3 {
		fmt.Fprintln(os.Stderr, "usage: gortbench BENCH SIZE")
		os.Exit(2)
	}
	name := os.Args[1]
	if name == "preempt_overhead" {
		fmt.Println("RESULT preempt_overhead n/a Go preempts loops with signals: no check in the loop to measure")
		return
	}
	if name == "gc_clone_drop" {
		fmt.Println("RESULT gc_clone_drop n/a Go copies a pointer: no reference count to clone or drop")
		return
	}
	n, err := strconv.Atoi(os.Args[2])
	f, ok := benches[name]
	if err != nil || !ok {
		fmt.Fprintf(os.Stderr, "gortbench: unknown benchmark %q or bad size\n", name)
		os.Exit(2)
	}
	for _, r := range f(n) {
		fmt.Printf("RESULT %s%s %v %s\n", name, r.suffix, r.value, r.unit)
	}
}

func one(v float64, unit string) []row { return []row{{"", v, unit}} }

func nsPer(d time.Duration, ops int) float64 { return float64(d.Nanoseconds()) / float64(ops) }

var sink atomic.Uint64

func spawnJoin(n int) []row {
	t := time.Now()
	var wg sync.WaitGroup
	wg.Add(n)
	for i := 0; i < n; i++ {
		go func(i int) { sink.Store(uint64(i)); wg.Done() }(i)
	}
	wg.Wait()
	return one(nsPer(time.Since(t), n), "ns/op")
}

func seqSpawn(n int) []row {
	t := time.Now()
	for i := 0; i < n; i++ {
		var wg sync.WaitGroup
		wg.Add(1)
		go func(i int) { sink.Store(uint64(i)); wg.Done() }(i)
		wg.Wait()
	}
	return one(nsPer(time.Since(t), n), "ns/op")
}

func pingPong(n int) []row {
	ping, pong := make(chan uint64), make(chan uint64)
	done := make(chan struct{})
	go func() {
		for v := range ping {
			pong <- v
		}
		close(done)
	}()
	t := time.Now()
	for i := 0; i < n; i++ {
		ping <- uint64(i)
		<-pong
	}
	el := time.Since(t)
	close(ping)
	<-done
	return one(nsPer(el, n), "ns/op")
}

// work is the dispatcher's CPU-bound handler, the same arithmetic as
// gort_bench::work.
func work(seed, iters uint64) uint64 {
	x := seed | 1
	for i := uint64(0); i < iters; i++ {
		x = x*6364136223846793005 + 1442695040888963407
		x ^= x >> 33
	}
	return x
}

const dispatchWork = 25000

func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func dispatcher(n int) []row {
	cpu0 := cpuTime()
	t := time.Now()
	jobs := make(chan uint64)
	go func() {
		for i := 0; i < n; i++ {
			jobs <- uint64(i)
		}
		close(jobs)
	}()
	var wg sync.WaitGroup
	for j := range jobs {
		wg.Add(1)
		go func(j uint64) { sink.Store(work(j, dispatchWork)); wg.Done() }(j)
	}
	wg.Wait()
	wall := time.Since(t)
	cpu := cpuTime() - cpu0
	procs := runtime.GOMAXPROCS(0)
	return []row{
		{"", 100 * cpu.Seconds() / (wall.Seconds() * float64(procs)), "% busy"},
		{"_throughput", float64(n) / wall.Seconds(), "jobs/s"},
	}
}

func syscallRow(n int) []row {
	t := time.Now()
	for i := 0; i < n; i++ {
		// Syscall (not RawSyscall) goes through entersyscall/exitsyscall.
		r, _, _ := syscall.Syscall(syscall.SYS_GETPID, 0, 0, 0)
		sink.Store(uint64(r))
	}
	return one(nsPer(time.Since(t), n), "ns/op")
}

func chanBuf(n, k int) []row {
	ch := make(chan uint64, 128)
	per := n / k
	t := time.Now()
	var cons sync.WaitGroup
	var got atomic.Int64
	for c := 0; c < k; c++ {
		cons.Add(1)
		go func() {
			cnt := 0
			for v := range ch {
				sink.Store(v)
				cnt++
			}
			got.Add(int64(cnt))
			cons.Done()
		}()
	}
	var prods sync.WaitGroup
	for p := 0; p < k; p++ {
		prods.Add(1)
		go func() {
			for i := 0; i < per; i++ {
				ch <- uint64(i)
			}
			prods.Done()
		}()
	}
	prods.Wait()
	close(ch)
	cons.Wait()
	if got.Load() != int64(per*k) {
		panic("lost messages")
	}
	return one(nsPer(time.Since(t), per*k), "ns/msg")
}

func select4(n int) []row {
	per := n / 4
	var cs [4]chan uint64
	t := time.Now()
	for i := range cs {
		cs[i] = make(chan uint64, 128)
		go func(c chan uint64) {
			for i := 0; i < per; i++ {
				c <- uint64(i)
			}
		}(cs[i])
	}
	for i := 0; i < per*4; i++ {
		select {
		case v := <-cs[0]:
			sink.Store(v)
		case v := <-cs[1]:
			sink.Store(v)
		case v := <-cs[2]:
			sink.Store(v)
		case v := <-cs[3]:
			sink.Store(v)
		}
	}
	return one(nsPer(time.Since(t), per*4), "ns/op")
}

func gosched(n, k int) []row {
	per := n / k
	t := time.Now()
	var wg sync.WaitGroup
	wg.Add(k)
	for i := 0; i < k; i++ {
		go func() {
			for j := 0; j < per; j++ {
				runtime.Gosched()
			}
			wg.Done()
		}()
	}
	wg.Wait()
	return one(nsPer(time.Since(t), per*k), "ns/op")
}

func mutex8(n int) []row {
	per := n / 8
	var mu sync.Mutex
	count := 0
	t := time.Now()
	var wg sync.WaitGroup
	wg.Add(8)
	for i := 0; i < 8; i++ {
		go func() {
			for j := 0; j < per; j++ {
				mu.Lock()
				count++
				mu.Unlock()
			}
			wg.Done()
		}()
	}
	wg.Wait()
	el := time.Since(t)
	if count != per*8 {
		panic("lost increments")
	}
	return one(nsPer(el, per*8), "ns/op")
}

func waitgroup(n int) []row {
	t := time.Now()
	var wg sync.WaitGroup
	wg.Add(n)
	for i := 0; i < n; i++ {
		go wg.Done()
	}
	wg.Wait()
	return one(nsPer(time.Since(t), n), "ns/op")
}

func sleepRows(wall time.Duration, late []int64) []row {
	sort.Slice(late, func(i, j int) bool { return late[i] < late[j] })
	pct := func(p float64) float64 {
		i := int(float64(len(late)-1)*p + 0.5)
		return float64(late[i]) / 1000
	}
	return []row{
		{"", wall.Seconds() * 1000, "ms"},
		{"_p50", pct(0.50), "us late"},
		{"_p99", pct(0.99), "us late"},
	}
}

func sleep100k(n int) []row {
	const d = time.Millisecond
	late := make([]int64, n)
	t := time.Now()
	var wg sync.WaitGroup
	wg.Add(n)
	for i := 0; i < n; i++ {
		go func(i int) {
			s := time.Now()
			time.Sleep(d)
			late[i] = int64(max(time.Since(s)-d, 0))
			wg.Done()
		}(i)
	}
	wg.Wait()
	return sleepRows(time.Since(t), late)
}

func sieve(n int) []row {
	t := time.Now()
	ch := make(chan int)
	go func(out chan<- int) {
		for i := 2; ; i++ {
			out <- i
		}
	}(ch)
	last := 0
	for i := 0; i < n; i++ {
		prime := <-ch
		last = prime
		out := make(chan int)
		go func(in <-chan int, out chan<- int, prime int) {
			for v := range in {
				if v%prime != 0 {
					out <- v
				}
			}
		}(ch, out, prime)
		ch = out
	}
	el := time.Since(t)
	if n == 5000 && last != 48611 {
		panic(fmt.Sprint("the 5000th prime is 48611, got ", last))
	}
	return one(el.Seconds()*1000, "ms")
}

func rssKiB() float64 {
	b, _ := os.ReadFile("/proc/self/status")
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, "VmRSS:") {
			f := strings.Fields(l)
			v, _ := strconv.ParseFloat(f[1], 64)
			return v
		}
	}
	return 0
}

func parked1m(n int) []row {
	var started atomic.Int64
	gate := make(chan struct{})
	base := rssKiB()
	for i := 0; i < n; i++ {
		go func() {
			started.Add(1)
			<-gate
			started.Add(-1)
		}()
	}
	for started.Load() != int64(n) {
		time.Sleep(time.Millisecond)
	}
	time.Sleep(50 * time.Millisecond)
	kib := (rssKiB() - base) / float64(n)
	close(gate)
	for started.Load() != 0 {
		time.Sleep(time.Millisecond)
	}
	return one(kib, "KiB/goroutine")
}

type node struct{ left, right *node }

func bottomUp(d uint) *node {
	if d == 0 {
		return &node{}
	}
	return &node{bottomUp(d - 1), bottomUp(d - 1)}
}

func (n *node) check() int {
	if n.left == nil {
		return 1
	}
	return 1 + n.left.check() + n.right.check()
}

// binaryTrees: depths 4..max step 2, 2^(max-d+5) trees at depth d, a
// long-lived tree of depth max (6.25M nodes allocated for max = 14), as in
// gort_bench::tree_iterations.
func binaryTrees(max int) []row {
	t := time.Now()
	long := bottomUp(uint(max))
	nodes := 0
	for d := 4; d <= max; d += 2 {
		for i := 0; i < 1<<(max-d+5); i++ {
			nodes += bottomUp(uint(d)).check()
		}
	}
	nodes += long.check()
	sink.Store(uint64(nodes))
	return one(time.Since(t).Seconds()*1000, "ms")
}

// gcStall: the longest time one 31-node tree took to build and check
// while a depth-18 tree stays alive (gort_bench::max_stall_us).
func gcStall(trees int) []row {
	long := bottomUp(18)
	var worst time.Duration
	sum := 0
	for i := 0; i < trees; i++ {
		t := time.Now()
		sum += bottomUp(4).check()
		worst = max(worst, time.Since(t))
	}
	sink.Store(uint64(sum + long.check()))
	return one(worst.Seconds()*1e6, "us")
}

// gcMark: the time of one forced collection (runtime.GC) of an all-live
// heap: cells*10,000 leaves of 8 bytes, each cell a mutex-guarded slice of
// pointers to them, as gort_bench::gc_mark_heap. Median of
// GC_MARK_CYCLES cycles, in ms.
func gcMark(cells int) []row {
	type cell struct {
		mu   sync.Mutex
		kids []*uint64
	}
	heap := make([]*cell, cells)
	for i := range heap {
		c := &cell{kids: make([]*uint64, gcMarkKids)}
		for j := range c.kids {
			v := uint64(i*gcMarkKids + j)
			c.kids[j] = &v
		}
		heap[i] = c
	}
	runtime.GC()
	var times []float64
	for i := 0; i < gcMarkCycles; i++ {
		t := time.Now()
		runtime.GC()
		times = append(times, time.Since(t).Seconds()*1000)
	}
	runtime.KeepAlive(heap)
	sort.Float64s(times)
	return one(times[len(times)/2], "ms")
}

const gcMarkKids, gcMarkCycles = 10000, 5
