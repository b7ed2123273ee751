package sizing

import (
	"fmt"
	"math"
	"sort"
	"strings"

	"github.com/taxflow/taxflow/infra"
)

// The volume the page sizes for, and what it assumes about when the cases come.
const (
	DeclarationsPerYear = 15_000_000
	RefundsPerYear      = 5_000_000
	// DeclarationPeakWeek: the season's last week brings about a quarter of the year's
	// declarations (the brief). RefundPeakWeek is our assumption: refund claims come all
	// year, more in the season, so the busiest week brings 10 % of them.
	DeclarationPeakWeek = 0.25
	RefundPeakWeek      = 0.10
	// PeakHoursPerWeek: cases are filed and reviewed in working hours, so the peak week's
	// load falls in 5 days of 10 hours, not in 168 hours.
	PeakHoursPerWeek = 50.0
	// SeasonMonthShare: the season's busiest month (April) for the monthly cost: 45 % of
	// the year's declarations (the peak week and three more busy weeks), 15 % of refunds.
	DeclarationSeasonMonth = 0.45
	RefundSeasonMonth      = 0.15
	// How long a case stays open (its history is active storage): a declaration the
	// 3-month desk review plus the 1-month appeal term (the configuration's defaults,
	// TAXFLOW_DECLARATION_REVIEW_MONTHS and _APPEAL_MONTHS); a refund at most its 30-day
	// term (TAXFLOW_REFUND_DEADLINE_DAYS), most close sooner: we take 30 days.
	DeclarationOpenDays = 122.0
	RefundOpenDays      = 30.0
	// DeclarationSeasonOpen: at the end of April the declarations of the last 4 months are
	// open: we take 70 % of the year's (January to April).
	DeclarationSeasonOpen = 0.70
	// RetentionDays: a closed case's history is kept 7 days after close.
	RetentionDays = 7.0
)

// Temporal Cloud, from its documentation (temporalio/documentation, read 2026-12-05).
const (
	// https://docs.temporal.io/cloud/limits: "Default limit: 500 actions per second (APS)",
	// raised automatically from the last 7 days' usage, or by provisioned capacity (TRUs).
	CloudDefaultAPS = 500
	// https://docs.temporal.io/cloud/pricing (docs/evaluate/temporal-cloud/pricing.mdx at
	// commit 003cfc58): storage per GBh; 1 GB of a month = 744 GBh.
	CloudActiveGBh   = 0.042
	CloudRetainedGBh = 0.00105
	HoursPerMonth    = 744.0
	// The Business plan: the greater of $500 a month or 10 % of usage (same page).
	CloudBusinessMin   = 500.0
	CloudBusinessShare = 0.10
)

// cloudActionTiers: price per million actions by monthly volume, Pay-As-You-Go (same
// page): first 5M $50, next 5M $45, next 10M $40, next 30M $35, next 50M $30, next 100M
// $25; over 200M "contact Sales" — we price it at $25 and say so.
var cloudActionTiers = []struct{ upTo, perMillion float64 }{
	{5e6, 50}, {10e6, 45}, {20e6, 40}, {50e6, 35}, {100e6, 30}, {200e6, 25}, {math.Inf(1), 25},
}

// AWS prices, us-east-1, with where each was read (2026-12-05). None is from AWS's
// own price list API; each page is named so it can be checked.
const (
	// https://cloudchipr.com/blog/aws-lambda-pricing ("Ultimate Guide 2024"): Arm, first
	// 7.5 billion GB-s a month.
	LambdaArmGBSecond = 0.0000133334
	// https://git.mcrn.ar/mariano/lambda_local_runner/src/commit/957e45b8adae23ce50b966346229585b5df18b4d/docs/lambdas-md/lambda-13-cost.md
	// (the same per-GB-s figure for arm64): requests $0.20 per million.
	LambdaPerMillion = 0.20
	// https://airbyte.com/data-engineering-resources/dynamodb-pricing (July 2025, US East, after
	// the 50 % on-demand cut of November 2024): $0.625 per million write request units,
	// $0.125 per million read request units. Provisioned, from
	// https://zeonedge.com/en/blog/dynamodb-cost-optimization-on-demand-provisioned-dax-single-table:
	// $0.00065 per WCU-hour, $0.00013 per RCU-hour.
	DynamoWRUPerMillion = 0.625
	DynamoRRUPerMillion = 0.125
	DynamoWCUHour       = 0.00065
	DynamoRCUHour       = 0.00013
	// http://aws.amazon.com/dynamodb/pricing/ (stored copy): "prices start from $0.25 per GB-month".
	DynamoGBMonth = 0.25
	// https://cloudburn.io/blog/amazon-s3-pricing (March 2026): S3 Standard $0.023/GB-month.
	S3GBMonth = 0.023
	// https://www.cloudkaramchari.com/blog/understanding-per-1000-put-copy-post-or-list-requests-in-amazon-s3-pricing/:
	// PUT, COPY, POST, LIST $0.005 per 1,000.
	S3PutPerThousand = 0.005
	// S3 GET requests: no stored source gave the price; they are counted, not priced.
)

// Self-hosted Temporal: the CPU a refund costs on our cluster (README, Performance:
// `make bench-cluster`, the refund through the Lambda host: history 44 ms, matching 15,
// frontend 16, PostgreSQL 45, the worker 19 ms per refund).
const (
	ClusterRefundHistoryMs  = 44.0
	ClusterRefundMatchingMs = 15.0
	ClusterRefundFrontendMs = 16.0
	ClusterRefundPostgresMs = 45.0
	ClusterRefundWorkerMs   = 19.0
	// An instance of a service: 4 cores, run at 50 % at the peak.
	CoresPerInstance = 4.0
	TargetCPU        = 0.5
	// HistoryShards: fixed when the cluster is created and never changed after. The guide
	// at https://www.mintlify.com/temporalio/temporal/operations/persistence gives
	// 128-512 for small, 1024-2048 for medium production and 4096 for large; Temporal
	// has said shards are lightweight and tested up to 16k (quoted at
	// https://blog.csdn.net/spirit_8023/article/details/134954811). We take 4096.
	HistoryShards = 4096
	// ProvisionedTarget: provisioned DynamoDB capacity for the peak at 70 % use.
	ProvisionedTarget = 0.7
)

// rates are a process's cases per second at the peak and per year.
type volume struct {
	p                 Process
	perYear, peakWeek float64
	seasonMonth       float64
	openDays          float64
	peakPerSecond     float64
	openAvg, openPeak float64 // open cases
}

func volumes(f Figures) ([]volume, error) {
	out := make([]volume, 2) // the declaration, then the refund
	found := 0
	for _, p := range f.Processes {
		v := volume{p: p}
		switch p.Name {
		case "declaration":
			v.perYear, v.peakWeek, v.seasonMonth, v.openDays = DeclarationsPerYear, DeclarationPeakWeek, DeclarationSeasonMonth, DeclarationOpenDays
			v.openPeak = v.perYear * DeclarationSeasonOpen
		case "refund":
			v.perYear, v.peakWeek, v.seasonMonth, v.openDays = RefundsPerYear, RefundPeakWeek, RefundSeasonMonth, RefundOpenDays
			v.openPeak = v.perYear * v.peakWeek / 7 * v.openDays // the peak week's rate held for a term
		default:
			continue
		}
		v.peakPerSecond = v.perYear * v.peakWeek / (PeakHoursPerWeek * 3600)
		v.openAvg = v.perYear / 365 * v.openDays // Little's law
		if p.Name == "declaration" {
			out[0] = v
		} else {
			out[1] = v
		}
		found++
	}
	if found != 2 || out[0].p.Cases == 0 || out[1].p.Cases == 0 {
		return nil, fmt.Errorf("sizing: the figures need one refund and one declaration process with cases")
	}
	return out, nil
}

// gbSeconds is a case's Lambda GB-s: each function's time by its configured memory.
func gbSeconds(p Process, memory map[string]int32) float64 {
	gbs := 0.0
	for fn, s := range p.SecondsByFunction {
		mb := memory[fn]
		if mb == 0 {
			mb = 128
		}
		gbs += s * float64(mb) / 1024
	}
	return gbs
}

// s3Split counts a case's S3 requests priced as PUT (PUT, COPY, POST, LIST) and as GET
// (GET, HEAD and the rest but DELETE, which is free).
func s3Split(p Process) (put, get float64) {
	for op, n := range p.S3ByOp {
		switch {
		case op == "PutObject" || op == "CopyObject" || op == "CreateMultipartUpload" || op == "UploadPart" ||
			op == "CompleteMultipartUpload" || strings.HasPrefix(op, "ListObjects"):
			put += n
		case op == "DeleteObject" || op == "DeleteObjects":
		default:
			get += n
		}
	}
	return put, get
}

// CloudActionsCost prices a month's actions by the Pay-As-You-Go tiers.
func CloudActionsCost(actions float64) float64 {
	cost, below := 0.0, 0.0
	for _, t := range cloudActionTiers {
		if actions <= below {
			break
		}
		n := math.Min(actions, t.upTo) - below
		cost += n / 1e6 * t.perMillion
		below = t.upTo
	}
	return cost
}

func memoryByFunction() map[string]int32 {
	m := map[string]int32{}
	for _, f := range infra.Declare().Functions {
		m[f.Name] = f.MemoryMB
	}
	return m
}

// Render makes docs/sizing.md from the figures. It reads nothing else but the
// infrastructure's declaration (each function's memory): the same figures make the same page.
func Render(f Figures, fromFile string) (string, error) {
	vs, err := volumes(f)
	if err != nil {
		return "", err
	}
	mem := memoryByFunction()
	var b strings.Builder
	w := func(format string, a ...any) { fmt.Fprintf(&b, format, a...) }
	sum := func(g func(v volume) float64) float64 {
		t := 0.0
		for _, v := range vs {
			t += g(v)
		}
		return t
	}
	peak := func(g func(p Process) float64) float64 {
		return sum(func(v volume) float64 { return v.peakPerSecond * g(v.p) })
	}
	year := func(g func(p Process) float64) float64 {
		return sum(func(v volume) float64 { return v.perYear * g(v.p) })
	}
	month := func(g func(p Process) float64, season bool) float64 {
		return sum(func(v volume) float64 {
			if season {
				return v.perYear * v.seasonMonth * g(v.p)
			}
			return v.perYear / 12 * g(v.p)
		})
	}

	w("# Sizing: 15 million declarations and 5 million refund claims a year\n\n")
	w("Generated by `go run ./cmd/sizing --from %s` from the figures `%s` measured on %s (%s). "+
		"`make sizing` measures them again on a fresh bench stack and regenerates this page; do not edit it by hand.\n\n",
		fromFile, f.Command, f.Generated.Format("2006-01-02 15:04 UTC"), f.Stack)

	w("## What one case costs (measured)\n\n")
	w("Each figure is the average of the cases the bench ran one at a time through the real API and a worker (functions in process, AWS clients metered). %s.\n\n", f.CapacityNote)
	w("| per case |")
	for _, v := range vs {
		w(" %s (N = %d) |", v.p.Name, v.p.Cases)
	}
	w("\n|---|")
	for range vs {
		w("---:|")
	}
	w("\n")
	row := func(name string, g func(p Process) string) {
		w("| %s |", name)
		for _, v := range vs {
			w(" %s |", g(v.p))
		}
		w("\n")
	}
	f1 := func(g func(p Process) float64) func(p Process) string {
		return func(p Process) string { return fmt.Sprintf("%.1f", g(p)) }
	}
	row("path", func(p Process) string { return p.Path })
	row("history events", f1(func(p Process) float64 { return p.HistoryEvents }))
	row("history size, KB", f1(func(p Process) float64 { return p.HistoryBytes / 1024 }))
	row("workflow tasks", f1(func(p Process) float64 { return p.WorkflowTasks }))
	row("activity tasks (attempts)", func(p Process) string { return fmt.Sprintf("%.1f (%.1f)", p.ActivityTasks, p.ActivityAttempts) })
	row("local activities", f1(func(p Process) float64 { return p.LocalActivities }))
	row("timers / signals / updates", func(p Process) string { return fmt.Sprintf("%.1f / %.1f / %.1f", p.Timers, p.Signals, p.Updates) })
	row("search attribute upserts", f1(func(p Process) float64 { return p.Upserts }))
	row("child workflows", f1(func(p Process) float64 { return p.Children }))
	row("**Temporal Cloud actions**", func(p Process) string { return fmt.Sprintf("**%.1f**", p.Actions) })
	row("function invocations", f1(func(p Process) float64 { return p.Invocations }))
	row("function time, ms (in process)", f1(func(p Process) float64 { return p.FunctionSeconds * 1000 }))
	row("Lambda GB-s (configured memory)", func(p Process) string { return fmt.Sprintf("%.4f", gbSeconds(p, mem)) })
	row("DynamoDB reads / writes", func(p Process) string { return fmt.Sprintf("%.1f / %.1f", p.DynamoReads, p.DynamoWrites) })
	row("DynamoDB read / write units", func(p Process) string { return fmt.Sprintf("%.1f / %.1f", p.ReadUnits, p.WriteUnits) })
	row("DynamoDB tables grew by, KB", f1(func(p Process) float64 { return p.DynamoBytes / 1024 }))
	row("S3 requests (PUT-class / GET-class)", func(p Process) string {
		put, get := s3Split(p)
		return fmt.Sprintf("%.1f (%.1f / %.1f)", p.S3Requests, put, get)
	})
	row("S3 bytes put, KB", f1(func(p Process) float64 { return p.S3PutBytes / 1024 }))
	w("\nActions by rule (https://docs.temporal.io/cloud/actions; the rule of each count is in `cmd/internal/sizing/actions.go`):\n\n")
	for _, v := range vs {
		var parts []string
		keys := make([]string, 0, len(v.p.ActionsByRule))
		for k, n := range v.p.ActionsByRule {
			if n > 0 {
				keys = append(keys, k)
			}
		}
		sort.Strings(keys)
		for _, k := range keys {
			parts = append(parts, fmt.Sprintf("%s %.1f", k, v.p.ActionsByRule[k]))
		}
		w("- %s: %s.\n", v.p.Name, strings.Join(parts, "; "))
	}
	w("\nNot in the figures:\n\n")
	for _, s := range f.NotIncluded {
		w("- %s\n", s)
	}

	w("\n## The volume and the peak (assumed)\n\n")
	w("- %s declarations and %s refund claims a year; the refunds that confirmed declarations start are among the refund claims (a declaration's figures hold its child's start, not the refund).\n",
		thousands(DeclarationsPerYear), thousands(RefundsPerYear))
	w("- Peak week: %.0f %% of the year's declarations (given) and %.0f %% of the year's refunds (our assumption: refunds come all year, more in the season).\n",
		DeclarationPeakWeek*100, RefundPeakWeek*100)
	w("- The peak week's cases come in %.0f working hours (5 days × 10 h), evenly: the peak second is the week's count / %.0f s. "+
		"A case's steps spread over days (a reviewer decides later), so this takes a case's whole work as arriving with it: at a steady peak that is the same load.\n",
		PeakHoursPerWeek, PeakHoursPerWeek*3600)
	w("- The season's month (April) for the monthly cost: %.0f %% of the declarations, %.0f %% of the refunds; an average month is a twelfth of the year.\n",
		DeclarationSeasonMonth*100, RefundSeasonMonth*100)
	w("- Open cases: a declaration stays open %.0f days (3-month desk review + 1-month appeal), a refund %.0f days; at the season's end %.0f %% of the year's declarations are open. "+
		"Closed histories are kept %.0f days.\n\n", DeclarationOpenDays, RefundOpenDays, DeclarationSeasonOpen*100, RetentionDays)
	w("| at the peak | declarations | refunds | total |\n|---|---:|---:|---:|\n")
	w("| cases per second | %.1f | %.1f | %.1f |\n\n", vs[0].peakPerSecond, vs[1].peakPerSecond, vs[0].peakPerSecond+vs[1].peakPerSecond)

	aps := peak(func(p Process) float64 { return p.Actions })
	starts := peak(func(p Process) float64 { return p.WorkflowStarts })
	acts := peak(func(p Process) float64 { return p.ActivityAttempts })
	wfts := peak(func(p Process) float64 { return p.WorkflowTasks })
	inv := peak(func(p Process) float64 { return p.Invocations })
	conc := peak(func(p Process) float64 { return p.FunctionSeconds })
	reads, writes := peak(func(p Process) float64 { return p.DynamoReads }), peak(func(p Process) float64 { return p.DynamoWrites })
	rru, wru := peak(func(p Process) float64 { return p.ReadUnits }), peak(func(p Process) float64 { return p.WriteUnits })
	s3req := peak(func(p Process) float64 { return p.S3Requests })
	s3Year := year(func(p Process) float64 { return p.S3PutBytes })
	// DynamoDB's growth: what the tables grew by per case when the bench measured it, else at
	// most a KB per write unit (updates overwrite, so less).
	ddbMeasured := true
	for _, v := range vs {
		ddbMeasured = ddbMeasured && v.p.DynamoBytes > 0
	}
	ddbYear := year(func(p Process) float64 {
		if ddbMeasured {
			return p.DynamoBytes
		}
		return p.WriteUnits * 1024
	})
	ddbWhat := "growth per year, at most (every write unit a new KB; updates overwrite, so less)"
	if ddbMeasured {
		ddbWhat = "growth per year (the tables' size after the cases less before, per case)"
	}
	w("## Per second at the peak\n\n| what | per second |\n|---|---:|\n")
	w("| Temporal actions | %.0f |\n| workflow starts | %.1f |\n| activity tasks (attempts) | %.0f |\n| workflow tasks | %.0f |\n", aps, starts, acts, wfts)
	w("| Lambda invocations | %.0f |\n| Lambda concurrency (invocations/s × duration) | %.1f |\n", inv, conc)
	w("| DynamoDB reads / writes | %.0f / %.0f |\n| DynamoDB read / write units | %.0f / %.0f |\n", reads, writes, rru, wru)
	w("| S3 requests | %.0f |\n\n", s3req)
	w("Lambda's duration is the functions' time in process against the local stores; on AWS a function's time includes its calls to DynamoDB and S3 over the network and a cold start now and then, so give the concurrency a margin (×3 below).\n\n")

	// History storage.
	var openAvgGB, openPeakGB, retainedGB float64
	for _, v := range vs {
		openAvgGB += v.openAvg * v.p.HistoryBytes / 1e9
		openPeakGB += v.openPeak * v.p.HistoryBytes / 1e9
		retainedGB += v.perYear / 365 * RetentionDays * v.p.HistoryBytes / 1e9
	}
	w("## Storage\n\n| what | size |\n|---|---:|\n")
	w("| open cases' histories, average (Little's law) | %.1f GB |\n| open cases' histories at the season's end | %.1f GB |\n", openAvgGB, openPeakGB)
	w("| closed histories kept %.0f days | %.1f GB |\n", RetentionDays, retainedGB)
	w("| S3: documents and decisions put per year | %.1f GB |\n", s3Year/1e9)
	w("| DynamoDB: %s | %.1f GB |\n\n", ddbWhat, ddbYear/1e9)
	w("Histories of all open cases: %s declarations and %s refunds open on average, %s and %s at the season's end.\n\n",
		thousands(int(vs[0].openAvg)), thousands(int(vs[1].openAvg)), thousands(int(vs[0].openPeak)), thousands(int(vs[1].openPeak)))

	// Temporal Cloud.
	avgActions := month(func(p Process) float64 { return p.Actions }, false)
	seasonActions := month(func(p Process) float64 { return p.Actions }, true)
	w("## Temporal Cloud\n\n")
	w("- Actions: %s a month on average, %s in the season's month (%s a year).\n", millions(avgActions), millions(seasonActions), millions(year(func(p Process) float64 { return p.Actions })))
	w("- Actions per second at the peak: **%.0f** against the namespace's default limit of %d APS (https://docs.temporal.io/cloud/limits): %s.\n",
		aps, CloudDefaultAPS, apsVerdict(aps))
	w("- Storage: active (open histories) %.0f–%.0f GB, retained %.1f GB.\n\n", openAvgGB, openPeakGB, retainedGB)

	// Self-hosted.
	if f.BenchRefundEvents <= 0 {
		return "", fmt.Errorf("sizing: the figures lack bench_refund_events (the history events of the cluster bench's refund)")
	}
	benchEvents := float64(f.BenchRefundEvents)
	w("## Self-hosted Temporal\n\n")
	w("- History shards: **%d**. The count is fixed when the cluster is created; the guide at https://www.mintlify.com/temporalio/temporal/operations/persistence gives 4096 for large production, and Temporal has said shards are lightweight and tested up to 16k (quoted at https://blog.csdn.net/spirit_8023/article/details/134954811). At the peak that is %.2f workflow tasks per shard per second.\n",
		HistoryShards, wfts/HistoryShards)
	// CPU scales with the history events a case writes, from the refund measured on the cluster.
	perEvent := func(ms float64) float64 {
		return peak(func(p Process) float64 { return ms / benchEvents * p.HistoryEvents }) / 1000
	}
	w("- CPU from our cluster's refund (README, Performance: history %.0f ms, matching %.0f, frontend %.0f, PostgreSQL %.0f, worker %.0f per refund; "+
		"that refund runs straight through in %d history events, measured by the same run), scaled by each process's history events, at %.0f %% of %.0f-core instances:\n\n",
		ClusterRefundHistoryMs, ClusterRefundMatchingMs, ClusterRefundFrontendMs, ClusterRefundPostgresMs, ClusterRefundWorkerMs, f.BenchRefundEvents, TargetCPU*100, CoresPerInstance)
	w("| service | cores at the peak | instances |\n|---|---:|---:|\n")
	for _, s := range []struct {
		name string
		ms   float64
	}{{"history", ClusterRefundHistoryMs}, {"matching", ClusterRefundMatchingMs}, {"frontend", ClusterRefundFrontendMs},
		{"PostgreSQL (one primary; beyond a large instance, Cassandra)", ClusterRefundPostgresMs}, {"workers", ClusterRefundWorkerMs}} {
		cores := perEvent(s.ms)
		w("| %s | %.1f | %d |\n", s.name, cores, instances(cores))
	}
	w("\nAt least 2 instances of each service for availability. Workers run the workflow code only (the functions are Lambdas).\n\n")

	// DynamoDB and Lambda.
	w("## AWS capacity\n\n")
	w("- DynamoDB on demand: %.0f read and %.0f write request units per second at the peak. Provisioned instead: **%.0f RCU and %.0f WCU** (the peak at %.0f %% use), scaled down out of season.\n",
		rru, wru, rru/ProvisionedTarget, wru/ProvisionedTarget, ProvisionedTarget*100)
	w("- Lambda: %.0f invocations per second, concurrency **%.0f** measured, %.0f with the ×3 margin (the account's default regional limit is 1,000; ask for more if the margin exceeds it).\n",
		inv, conc, conc*3)
	w("- S3: %.0f requests per second, far below S3's per-prefix rates.\n\n", s3req)

	// Monthly cost.
	w("## Monthly cost\n\n")
	w("| item | average month | season's month | price (source in `cmd/internal/sizing/model.go`, read 2026-12-05) |\n|---|---:|---:|---|\n")
	total := [2]float64{}
	line := func(name string, g func(season bool) float64, price string) {
		a, s := g(false), g(true)
		total[0] += a
		total[1] += s
		w("| %s | $%s | $%s | %s |\n", name, money(a), money(s), price)
	}
	line("Temporal Cloud actions", func(season bool) float64 {
		return CloudActionsCost(month(func(p Process) float64 { return p.Actions }, season))
	}, "$50–25 per million, Pay-As-You-Go tiers (over 200M: \"contact Sales\", priced at $25)")
	activeGB := map[bool]float64{false: openAvgGB, true: openPeakGB}
	line("Temporal Cloud storage", func(season bool) float64 {
		return activeGB[season]*HoursPerMonth*CloudActiveGBh + retainedGB*HoursPerMonth*CloudRetainedGBh
	}, "active $0.042/GBh, retained $0.00105/GBh")
	line("Lambda requests", func(season bool) float64 {
		return month(func(p Process) float64 { return p.Invocations }, season) / 1e6 * LambdaPerMillion
	}, "$0.20 per million")
	line("Lambda duration (arm64)", func(season bool) float64 {
		return month(func(p Process) float64 { return gbSeconds(p, mem) }, season) * LambdaArmGBSecond
	}, "$0.0000133334 per GB-s")
	line("DynamoDB on-demand reads", func(season bool) float64 {
		return month(func(p Process) float64 { return p.ReadUnits }, season) / 1e6 * DynamoRRUPerMillion
	}, "$0.125 per million read request units")
	line("DynamoDB on-demand writes", func(season bool) float64 {
		return month(func(p Process) float64 { return p.WriteUnits }, season) / 1e6 * DynamoWRUPerMillion
	}, "$0.625 per million write request units")
	line("DynamoDB storage (a year's growth)", func(bool) float64 { return ddbYear / 1e9 * DynamoGBMonth }, "$0.25 per GB-month")
	line("S3 PUT-class requests", func(season bool) float64 {
		return month(func(p Process) float64 { put, _ := s3Split(p); return put }, season) / 1000 * S3PutPerThousand
	}, "$0.005 per 1,000 (GET-class requests: no price found in a source, not included)")
	line("S3 storage (a year's documents)", func(bool) float64 { return s3Year / 1e9 * S3GBMonth }, "$0.023 per GB-month (S3 Standard)")
	plan := func(usage float64) float64 { return math.Max(CloudBusinessMin, CloudBusinessShare*usage) }
	cloudUsage := [2]float64{
		CloudActionsCost(avgActions) + openAvgGB*HoursPerMonth*CloudActiveGBh + retainedGB*HoursPerMonth*CloudRetainedGBh,
		CloudActionsCost(seasonActions) + openPeakGB*HoursPerMonth*CloudActiveGBh + retainedGB*HoursPerMonth*CloudRetainedGBh,
	}
	line("Temporal Cloud Business plan", func(season bool) float64 {
		if season {
			return plan(cloudUsage[1])
		}
		return plan(cloudUsage[0])
	}, "greater of $500 or 10 % of usage (the plan's included actions and storage are not deducted)")
	w("| **total** | **$%s** | **$%s** | |\n\n", money(total[0]), money(total[1]))
	w("Not priced: the API's compute (API Gateway or a container), data transfer, CloudWatch, KMS, the outbox relay and schedules, DynamoDB's free tier and the plans' included allowances. " +
		"Self-hosted instead of Temporal Cloud: the instances of the table above and PostgreSQL's storage (the open histories plus what it keeps), at your provider's prices.\n")
	return b.String(), nil
}

func instances(cores float64) int {
	n := int(math.Ceil(cores / (CoresPerInstance * TargetCPU)))
	return max(n, 2)
}

func apsVerdict(aps float64) string {
	switch {
	case aps <= CloudDefaultAPS*0.7:
		return "within it with room"
	case aps <= CloudDefaultAPS:
		return "within it, but close: raise it before the season (Capacity Modes)"
	default:
		return fmt.Sprintf("%.1f× over it: provision capacity (TRUs) before the season", aps/CloudDefaultAPS)
	}
}

func millions(x float64) string { return fmt.Sprintf("%.1f million", x/1e6) }

func money(x float64) string {
	s := fmt.Sprintf("%.0f", math.Round(x))
	return groupDigits(s)
}

func thousands(n int) string { return groupDigits(fmt.Sprint(n)) }

func groupDigits(s string) string {
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var out []string
	for len(s) > 3 {
		out = append([]string{s[len(s)-3:]}, out...)
		s = s[:len(s)-3]
	}
	out = append([]string{s}, out...)
	r := strings.Join(out, ",")
	if neg {
		r = "-" + r
	}
	return r
}
