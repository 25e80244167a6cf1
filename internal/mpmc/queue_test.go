package mpmc

import (
	"sync"
	"testing"
)

func TestFIFOAndBounds(t *testing.T) {
	for _, n := range []int{1, 3, 4, 5, 512} {
		q := New[int](n)
		if q.Cap() != n {
			t.Fatalf("Cap() = %d, want %d", q.Cap(), n)
		}
		vals := make([]int, 3*n)
		for round := range 3 {
			for i := range n {
				vals[round*n+i] = round*n + i
				if !q.Push(&vals[round*n+i]) {
					t.Fatalf("n=%d: push %d refused before full", n, i)
				}
			}
			if q.Push(new(int)) {
				t.Fatalf("n=%d: push accepted beyond capacity", n)
			}
			if q.Len() != n {
				t.Fatalf("n=%d: Len %d", n, q.Len())
			}
			for i := range n {
				v := q.Pop()
				if v == nil || *v != round*n+i {
					t.Fatalf("n=%d round %d: pop %d = %v", n, round, i, v)
				}
			}
			if q.Pop() != nil {
				t.Fatalf("n=%d: pop from empty queue", n)
			}
		}
	}
}

// Every pushed value is popped exactly once with several producers and
// consumers, and each producer's values come out in its order (run with
// -race).
func TestConcurrent(t *testing.T) {
	const producers, consumers, per = 3, 3, 20000
	q := New[[2]int](100)
	var wg sync.WaitGroup
	for p := range producers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < per; {
				if q.Push(&[2]int{p, i}) {
					i++
				}
			}
		}()
	}
	got := make([][][2]int, consumers)
	var done sync.WaitGroup
	var mu sync.Mutex
	total := 0
	for c := range consumers {
		done.Add(1)
		go func() {
			defer done.Done()
			for {
				mu.Lock()
				finished := total == producers*per
				mu.Unlock()
				if finished {
					return
				}
				if v := q.Pop(); v != nil {
					got[c] = append(got[c], *v)
					mu.Lock()
					total++
					mu.Unlock()
				}
			}
		}()
	}
	wg.Wait()
	done.Wait()
	seen := make([][]bool, producers)
	for p := range seen {
		seen[p] = make([]bool, per)
	}
	for _, vs := range got {
		last := [producers]int{-1, -1, -1}
		for _, v := range vs {
			if seen[v[0]][v[1]] {
				t.Fatalf("value %v popped twice", v)
			}
			seen[v[0]][v[1]] = true
			if v[1] <= last[v[0]] {
				t.Fatalf("producer %d's values out of order for one consumer: %d after %d", v[0], v[1], last[v[0]])
			}
			last[v[0]] = v[1]
		}
	}
	for p := range seen {
		for i, ok := range seen[p] {
			if !ok {
				t.Fatalf("value %d of producer %d lost", i, p)
			}
		}
	}
}

func TestNoAllocation(t *testing.T) {
	q := New[int](8)
	v := 1
	if n := testing.AllocsPerRun(1000, func() { q.Push(&v); q.Pop() }); n != 0 {
		t.Fatalf("%v allocations per push+pop", n)
	}
}

func BenchmarkPushPop(b *testing.B) {
	q := New[int](512)
	v := 1
	for b.Loop() {
		q.Push(&v)
		q.Pop()
	}
}
