package main

import (
	"fmt"
	"testing"
	"time"
)

func i64(v int64) *int64 { return &v }
func bl(b bool) *bool    { return &b }

func reg(client int, f string, value int64, status string, call, ret int64) *Op {
	o := &Op{Client: client, Workload: "register", Key: "k", F: f, Status: status,
		CallNs: call, ReturnNs: ret, Node: 1}
	if value >= 0 {
		o.Value = i64(value)
	}
	return o
}

func run(t *testing.T, ops []*Op) *Summary {
	t.Helper()
	return check(ops, nil, "test", t.TempDir(), 10*time.Second)
}

func TestALinearizableHistoryPasses(t *testing.T) {
	s := run(t, []*Op{
		reg(0, "write", 1, "ok", 0, 10),
		reg(1, "read", 1, "ok", 5, 15),
		reg(0, "write", 2, "info", 20, 30), // unknown outcome: may land any time later
		reg(1, "read", 1, "ok", 40, 50),
		reg(2, "read", 2, "ok", 60, 70),
	})
	if len(s.BadKeys) != 0 || s.Rows[0].Stale != 0 {
		t.Fatalf("bad keys %v, stale %d", s.BadKeys, s.Rows[0].Stale)
	}
}

func TestANewToOldInversionIsCaughtAndCountedStale(t *testing.T) {
	s := run(t, []*Op{
		reg(0, "write", 1, "ok", 0, 10),
		reg(0, "write", 2, "ok", 20, 30),
		reg(1, "read", 2, "ok", 40, 50),
		reg(2, "read", 1, "ok", 60, 70),
	})
	if len(s.BadKeys) != 1 {
		t.Fatalf("want the key flagged, got %v", s.BadKeys)
	}
	if s.Rows[0].Stale != 1 {
		t.Fatalf("want 1 stale read, got %d", s.Rows[0].Stale)
	}
}

func TestAFailedWriteThatIsReadIsCaught(t *testing.T) {
	s := run(t, []*Op{
		reg(0, "write", 1, "fail", 0, 10), // dropped: definitely not applied
		reg(1, "read", 1, "ok", 20, 30),
	})
	if len(s.BadKeys) != 1 {
		t.Fatalf("want the key flagged, got %v", s.BadKeys)
	}
}

func TestCasFollowsTheRegister(t *testing.T) {
	cas := func(client int, expect, value int64, applied bool, call, ret int64) *Op {
		o := reg(client, "cas", value, "ok", call, ret)
		o.Expect = i64(expect)
		if expect < 0 {
			o.Expect = nil
		}
		o.Applied = bl(applied)
		return o
	}
	ok := run(t, []*Op{cas(0, -1, 1, true, 0, 10), cas(1, -1, 2, false, 20, 30),
		reg(2, "read", 1, "ok", 40, 50)})
	if len(ok.BadKeys) != 0 {
		t.Fatalf("valid cas history flagged")
	}
	bad := run(t, []*Op{cas(0, -1, 1, true, 0, 10), cas(1, -1, 2, true, 20, 30)})
	if len(bad.BadKeys) != 1 {
		t.Fatalf("two cas from absent both applied: want flagged")
	}
}

func TestSetCountsLostAndResurrectedElements(t *testing.T) {
	add := func(key string, v int64, status string) *Op {
		return &Op{Workload: "set", F: "add", Key: key, Value: i64(v), Status: status, Node: 1}
	}
	final := func(key string, v int64) *Op {
		o := &Op{Workload: "set", F: "final-read", Key: key, Status: "ok"}
		if v >= 0 {
			o.Value = i64(v)
		}
		return o
	}
	s := run(t, []*Op{add("a", 1, "ok"), add("b", 2, "ok"), add("c", 3, "fail"),
		add("d", 4, "info"), final("a", 1), final("b", -1), final("c", 3), final("d", -1)})
	if s.Lost != 1 || s.Resurrected != 1 || s.NeverRead != 0 {
		t.Fatalf("lost %d resurrected %d never-read %d", s.Lost, s.Resurrected, s.NeverRead)
	}
}

func TestAvailabilityBelowTheMinimumFailsOnlyTheJudgedNemeses(t *testing.T) {
	wins := []Window{{Nemesis: "partition", StartNs: 100, EndNs: 200},
		{Nemesis: "kill", StartNs: 300, EndNs: 400}}
	var ops []*Op
	for i := int64(0); i < 10; i++ {
		st := "ok"
		if i == 0 {
			st = "fail" // 90% in each window
		}
		ops = append(ops, reg(int(i), "write", 10+i, st, 100+i, 101+i),
			reg(int(i), "write", 30+i, st, 300+i, 301+i))
	}
	s := check(ops, wins, "test", t.TempDir(), 10*time.Second)
	judgeAvailability(s, 0.99, "partition,isolate,ring")
	if len(s.Unavailable) != 1 || s.Unavailable[0] != "partition (90.0%)" {
		t.Fatalf("want partition judged below 99%%, got %v", s.Unavailable)
	}
	s = check(ops, wins, "test", t.TempDir(), 10*time.Second)
	judgeAvailability(s, 0.89, "partition,isolate,ring")
	if len(s.Unavailable) != 0 {
		t.Fatalf("90%% is above 89%%, got %v", s.Unavailable)
	}
}

// A CAS is Paxos whatever the run's level: a minority refusing it does not make ONE
// unavailable, but at LINEARIZABLE it counts.
func TestRefusedCasCountsAgainstAvailabilityOnlyAtLinearizable(t *testing.T) {
	wins := []Window{{Nemesis: "partition", StartNs: 100, EndNs: 200}}
	ops := []*Op{reg(1, "write", 1, "ok", 100, 101), reg(2, "read", 1, "ok", 102, 103)}
	cas := reg(3, "cas", 2, "fail", 104, 105)
	cas.Expect = i64(1)
	ops = append(ops, cas)
	for _, c := range []struct {
		level string
		want  string
	}{{"one", "100.0"}, {"linearizable", "66.7"}} {
		s := check(ops, wins, c.level, t.TempDir(), 10*time.Second)
		for _, r := range s.Rows {
			if r.Nemesis == "partition" {
				if got := fmt.Sprintf("%.1f", 100*r.Avail); got != c.want {
					t.Fatalf("%s: availability %s%%, want %s%%", c.level, got, c.want)
				}
			}
		}
	}
}
