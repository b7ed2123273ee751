# taxflow — the two commands: `make dev` (the whole local stack with a demo) and `make test`;
# `make demo` is `make dev` that stops after the demo and fails when a process did not end as it should.
SHELL := /bin/bash
GO    ?= go
export TAXFLOW_TOOLS ?= $(CURDIR)/.tools
BIN   := $(CURDIR)/bin/taxflow
REDOCLY = $(TAXFLOW_TOOLS)/redocly/node_modules/.bin/redocly
GOLANGCI_LINT = $(TAXFLOW_TOOLS)/bin/golangci-lint
WORKFLOWCHECK = $(TAXFLOW_TOOLS)/bin/workflowcheck

# The test stack runs on its own ports and run directory, so it never meets a dev stack.
TEST_ENV := TAXFLOW_RUN_DIR=$(CURDIR)/.run/test \
	TAXFLOW_TEMPORAL_PORT=$${TAXFLOW_TEST_TEMPORAL_PORT:-17233} TAXFLOW_TEMPORAL_UI_PORT=$${TAXFLOW_TEST_TEMPORAL_UI_PORT:-18233} \
	TAXFLOW_DYNAMODB_PORT=$${TAXFLOW_TEST_DYNAMODB_PORT:-18000} TAXFLOW_S3_PORT=$${TAXFLOW_TEST_S3_PORT:-19000} \
	TAXFLOW_S3_CONSOLE_PORT=$${TAXFLOW_TEST_S3_CONSOLE_PORT:-19001} TAXFLOW_LAMBDA_PORT=$${TAXFLOW_TEST_LAMBDA_PORT:-19009} \
	TAXFLOW_CODEC_PORT=$${TAXFLOW_TEST_CODEC_PORT:-18089}

# `make bench` runs on a third stack of its own (ports overridable like the test stack's).
BENCH_ENV := TAXFLOW_RUN_DIR=$(CURDIR)/.run/bench \
	TAXFLOW_TEMPORAL_PORT=$${TAXFLOW_BENCH_TEMPORAL_PORT:-27233} TAXFLOW_TEMPORAL_UI_PORT=$${TAXFLOW_BENCH_TEMPORAL_UI_PORT:-28233} \
	TAXFLOW_DYNAMODB_PORT=$${TAXFLOW_BENCH_DYNAMODB_PORT:-28000} TAXFLOW_S3_PORT=$${TAXFLOW_BENCH_S3_PORT:-29000} \
	TAXFLOW_S3_CONSOLE_PORT=$${TAXFLOW_BENCH_S3_CONSOLE_PORT:-29001} TAXFLOW_LAMBDA_PORT=$${TAXFLOW_BENCH_LAMBDA_PORT:-29009} \
	TAXFLOW_CODEC_PORT=$${TAXFLOW_BENCH_CODEC_PORT:-28089}
# `make test-cluster` and `make cluster-smoke` run on a stack of their own with the Temporal cluster on PostgreSQL.
# Every default port here is below Linux's ephemeral range (32768-60999): a port in it can be
# taken, for a while, by the local end of any outgoing connection (the tests make thousands).
CLUSTER_ENV := TAXFLOW_RUN_DIR=$(CURDIR)/.run/cluster TAXFLOW_TEMPORAL=server \
	TAXFLOW_TEMPORAL_PORT=$${TAXFLOW_CLUSTER_TEMPORAL_PORT:-32233} TAXFLOW_TEMPORAL_CLUSTER_PORT=$${TAXFLOW_CLUSTER_TEMPORAL_CLUSTER_PORT:-26234} \
	TAXFLOW_TEMPORAL_UI_PORT=$${TAXFLOW_CLUSTER_TEMPORAL_UI_PORT:-32250} TAXFLOW_POSTGRES_PORT=$${TAXFLOW_CLUSTER_POSTGRES_PORT:-32432} \
	TAXFLOW_DYNAMODB_PORT=$${TAXFLOW_CLUSTER_DYNAMODB_PORT:-32000} TAXFLOW_S3_PORT=$${TAXFLOW_CLUSTER_S3_PORT:-32100} \
	TAXFLOW_S3_CONSOLE_PORT=$${TAXFLOW_CLUSTER_S3_CONSOLE_PORT:-32101} TAXFLOW_LAMBDA_PORT=$${TAXFLOW_CLUSTER_LAMBDA_PORT:-32109} \
	TAXFLOW_CODEC_PORT=$${TAXFLOW_CLUSTER_CODEC_PORT:-32089}
# `make bench-cluster` runs on a cluster stack of its own (ports overridable; the cluster's at most 32767).
BENCH_CLUSTER_ENV := TAXFLOW_RUN_DIR=$(CURDIR)/.run/bench-cluster TAXFLOW_TEMPORAL=server \
	TAXFLOW_TEMPORAL_PORT=$${TAXFLOW_BENCH_CLUSTER_TEMPORAL_PORT:-30233} TAXFLOW_TEMPORAL_CLUSTER_PORT=$${TAXFLOW_BENCH_CLUSTER_TEMPORAL_CLUSTER_PORT:-30240} \
	TAXFLOW_TEMPORAL_UI_PORT=$${TAXFLOW_BENCH_CLUSTER_TEMPORAL_UI_PORT:-30250} TAXFLOW_POSTGRES_PORT=$${TAXFLOW_BENCH_CLUSTER_POSTGRES_PORT:-30432} \
	TAXFLOW_DYNAMODB_PORT=$${TAXFLOW_BENCH_CLUSTER_DYNAMODB_PORT:-30800} TAXFLOW_S3_PORT=$${TAXFLOW_BENCH_CLUSTER_S3_PORT:-30900} \
	TAXFLOW_S3_CONSOLE_PORT=$${TAXFLOW_BENCH_CLUSTER_S3_CONSOLE_PORT:-30901} TAXFLOW_LAMBDA_PORT=$${TAXFLOW_BENCH_CLUSTER_LAMBDA_PORT:-30909} \
	TAXFLOW_CODEC_PORT=$${TAXFLOW_BENCH_CLUSTER_CODEC_PORT:-30889}
CLUSTER_SMOKE_TESTS ?= ^(TestRefundEndToEndOverHTTP|TestSchedulesApplyTriggerAndRemindOnce|TestCodecServerDecodesHistoryForStaffOnly)$$
# On the cluster: each process end to end over HTTP, the batch pipeline, tenancy, schedules, the
# codec, every waiting state's history fetched from the cluster and replayed, and the faults
# of the topology (two workers, two APIs; a worker, an API, the history service killed,
# PostgreSQL restarted).
CLUSTER_TESTS ?= ^(TestRefundEndToEndOverHTTP|TestRefundLateDocumentWhileRunningOverHTTP|TestIdentityByDocumentsOverHTTPWithConsentPause|TestIdentityByESignatureOverHTTP|TestDeclarationSubmissionToDecisionOverHTTP|TestDeclarationConfirmedRefundPaidOverHTTP|TestAccountSelfServiceOverHTTP|TestAccountEventBurst|TestBatchFileThroughS3NotificationToReport|TestBatchAPIUploadStatusAndTenancy|TestAnotherTenantsCaseIsNotFound|TestSchedulesApplyTriggerAndRemindOnce|TestCodecServerDecodesHistoryForStaffOnly|TestRecordWaitingStateHistories|TestClusterFaults)$$
BENCH_N ?= 50
BENCH_ROUNDS ?= 3
BENCH_SWEEP ?= 100000
BENCH_BATCH ?= 10000
BENCH_BATCH_HISTORY ?= 100000
BENCH_OPEN ?= 100000
# `make bench-open` runs on a stack of its own (ports overridable like the bench stack's).
BENCH_OPEN_ENV := TAXFLOW_RUN_DIR=$(CURDIR)/.run/bench-open \
	TAXFLOW_TEMPORAL_PORT=$${TAXFLOW_BENCH_OPEN_TEMPORAL_PORT:-31233} TAXFLOW_TEMPORAL_UI_PORT=$${TAXFLOW_BENCH_OPEN_TEMPORAL_UI_PORT:-31234} \
	TAXFLOW_DYNAMODB_PORT=$${TAXFLOW_BENCH_OPEN_DYNAMODB_PORT:-31800} TAXFLOW_S3_PORT=$${TAXFLOW_BENCH_OPEN_S3_PORT:-31900} \
	TAXFLOW_S3_CONSOLE_PORT=$${TAXFLOW_BENCH_OPEN_S3_CONSOLE_PORT:-31901} TAXFLOW_LAMBDA_PORT=$${TAXFLOW_BENCH_OPEN_LAMBDA_PORT:-31909} \
	TAXFLOW_CODEC_PORT=$${TAXFLOW_BENCH_OPEN_CODEC_PORT:-31889}

.PHONY: help setup test-setup lint-setup build dev demo up down status test unit fuzz integration histories bench lint template clean cluster-setup cluster cluster-smoke test-cluster bench-cluster sizing bench-open bench-wave bench-webhooks docs
.DEFAULT_GOAL := help

help: ## list the targets (a plain `make` does this)
	@echo "taxflow — the two commands: make dev (whole local stack + demo, Ctrl-C stops it) and make test"
	@echo
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed -E 's/^([a-z-]+):.*## (.*)/  make \1\t\2/' | expand -t 20


setup: ## install the pinned tools the local stack runs on into .tools/ (Temporal CLI, MinIO, DynamoDB Local; a second run is a no-op)
	@bash localstack/native/setup.sh dev

test-setup: setup ## also what the tests read and drive (poppler-utils, Chromium; apt-get as root)
	@bash localstack/native/setup.sh test

lint-setup: ## install the pinned linters into .tools/ (redocly, golangci-lint, workflowcheck; make test and make lint only)
	@bash localstack/native/setup.sh lint

build: ## build the taxflow binary
	@$(GO) build -o $(BIN) ./cmd/taxflow

# DEMO_FLAGS: --date YYYY-MM-DD, --seed S, --taxpayers N (see bin/taxflow demo --help)
dev: setup build ## the main job: local stack + infra + data + worker + API + demo of every process; Ctrl-C stops it
	@$(BIN) dev $(DEMO_FLAGS)

demo: setup build ## the same set-up and demo, then stop everything; exit 0 only if every process ended as expected
	@$(BIN) demo $(DEMO_FLAGS)

up: setup build ## start the local stack in the background
	@$(BIN) stack up

down: build ## stop the local stack
	@$(BIN) stack down

status: build ## show which parts of the local stack run
	@$(BIN) stack status

cluster-setup: ## install the Temporal cluster's tools into .tools/ (server, SQL tool, UI server, schemas; PostgreSQL 15 with apt if missing)
	@bash localstack/native/setup.sh cluster

cluster: setup cluster-setup build ## start the local stack with a Temporal cluster on PostgreSQL instead of the dev server (make dev then uses it; make down stops it)
	@TAXFLOW_TEMPORAL=server $(BIN) stack up

cluster-smoke: test-setup cluster-setup build ## a fresh cluster stack: infra apply, schedules, a refund end to end, codec; down and up again on the same data
	@bash localstack/native/with-stack.sh $(CLUSTER_ENV) -- bash localstack/native/cluster-test.sh '$(CLUSTER_SMOKE_TESTS)'

test-cluster: test-setup cluster-setup build ## the integration tests that matter on a Temporal cluster (PostgreSQL, 4 services), its fault test, and down/up on the same data
	@bash localstack/native/with-stack.sh $(CLUSTER_ENV) -- bash localstack/native/cluster-test.sh '$(CLUSTER_TESTS)'

test: test-setup build lint unit fuzz integration ## every test: unit (with -race), brief fuzzing, integration on the local stack

docs: ## regenerate the state diagrams in docs/processes.md from the transitions tables
	@$(GO) run ./workflows/cmd/statesdoc docs/processes.md

lint: lint-setup ## gofmt, go vet, the OpenAPI linter (redocly), golangci-lint (.golangci.yml) and workflowcheck over workflows/
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go' -not -path './.tools/*')); \
	  if [ -n "$$out" ]; then echo "gofmt needed: $$out"; exit 1; fi
	@$(GO) vet ./...
	@$(GO) vet -tags integration ./internal/e2e/...
	@test -x "$(REDOCLY)" || { echo "lint: $(REDOCLY) is missing: run make lint-setup"; exit 1; }
	@REDOCLY_TELEMETRY=off REDOCLY_SUPPRESS_UPDATE_NOTICE=true "$(REDOCLY)" lint --format=summary api/openapi.yaml
	@test -x "$(GOLANGCI_LINT)" || { echo "lint: $(GOLANGCI_LINT) is missing: run make lint-setup"; exit 1; }
	@"$(GOLANGCI_LINT)" run ./...
	@test -x "$(WORKFLOWCHECK)" || { echo "lint: $(WORKFLOWCHECK) is missing: run make lint-setup"; exit 1; }
	@"$(WORKFLOWCHECK)" -config workflowcheck.config.yaml ./workflows/...

unit: ## unit tests with -race; then the replay of the recorded histories, with its count
	@$(GO) test -race -count=1 ./...
	@$(GO) test -count=1 -run '^TestRecordedHistoriesReplay$$' -v ./workflows/ | grep -E 'replayed|^(--- |FAIL|ok )'; exit $${PIPESTATUS[0]}

FUZZ_TIME ?= 3s
fuzz: ## each fuzz target briefly, from its committed seed corpus (testdata/fuzz)
	@for t in FuzzINN FuzzSNILS FuzzPassport FuzzNormalizeName; do \
	  $(GO) test -run '^$$' -fuzz "^$$t\$$" -fuzztime $(FUZZ_TIME) ./internal/domain/ || exit 1; done
	@$(GO) test -run '^$$' -fuzz '^FuzzCheckNeverPanics$$' -fuzztime $(FUZZ_TIME) ./internal/docs/
	@$(GO) test -run '^$$' -fuzz '^FuzzStreamAgreesWithCheck$$' -fuzztime $(FUZZ_TIME) ./internal/docs/
	@$(GO) test -run '^$$' -fuzz '^FuzzParse$$' -fuzztime $(FUZZ_TIME) ./internal/batch/
	@$(GO) test -run '^$$' -fuzz '^FuzzOneParse$$' -fuzztime $(FUZZ_TIME) ./api/

integration: build ## start a fresh test stack, run the integration tests, stop it whatever happens
	@bash localstack/native/with-stack.sh $(TEST_ENV) -- \
	  $(GO) test -tags integration -count=1 -timeout 20m -v ./internal/e2e/...

# The recorded histories of every waiting state (workflows/testdata/histories), replayed by
# the unit tests. Regenerate after a change that is behind workflow.GetVersion, keeping the
# old ones (docs/operators.md, "Versioning and replays").
HISTORIES := $(CURDIR)/workflows/testdata/histories
histories: setup build ## record the history of every waiting state of every workflow from a real run (test stack)
	@rm -rf $(CURDIR)/.run/histories.new
	@bash localstack/native/with-stack.sh $(TEST_ENV) -- \
	  env TAXFLOW_RECORD_HISTORIES=$(CURDIR)/.run/histories.new $(GO) test -tags integration -count=1 -timeout 10m \
	  -run '^TestRecordWaitingStateHistories$$' -v ./internal/e2e/
	@mkdir -p $(HISTORIES) && cp $(CURDIR)/.run/histories.new/*.json $(HISTORIES)/ && rm -rf $(CURDIR)/.run/histories.new
	@echo "histories: $$(ls $(HISTORIES)/*.json | wc -l) files in workflows/testdata/histories; check them with: go test -run Replay -v ./workflows/"

bench: setup build ## N refunds end to end (Lambda host, in process) vs a bare workflow; plus Go micro-benchmarks
	@$(GO) test -run '^$$' -bench . -benchmem ./internal/docs/ ./functions/overpayment/ ./internal/pii/
	@bash localstack/native/with-stack.sh $(BENCH_ENV) -- \
	  bash -c '$(BIN) infra apply >/dev/null && $(BIN) bench --n $(BENCH_N) --rounds $(BENCH_ROUNDS) && $(BIN) bench --overhead --n $(BENCH_N) --rounds $(BENCH_ROUNDS) && $(BIN) bench --sweep $(BENCH_SWEEP) && $(BIN) bench --batch $(BENCH_BATCH) --batch-history $(BENCH_BATCH_HISTORY)'

bench-webhooks: setup build ## refunds with one webhook endpoint vs none (same run), and the delivery lag from commit to the receiver's 200
	@bash localstack/native/with-stack.sh $(BENCH_ENV) -- \
	  bash -c '$(BIN) infra apply >/dev/null && $(BIN) bench --webhooks --n $(BENCH_N) --rounds $(BENCH_ROUNDS)'

bench-cluster: setup cluster-setup build ## the refund bench (make bench's table) on a fresh Temporal cluster stack, with 1 and 2 worker processes
	@bash localstack/native/with-stack.sh $(BENCH_CLUSTER_ENV) -- \
	  bash -c '$(BIN) infra apply >/dev/null && $(BIN) bench --temporal server --scaling --n $(BENCH_N) --rounds $(BENCH_ROUNDS) --creates 0'

sizing: setup build ## per case of a refund and a declaration (metered) on a fresh bench stack, then docs/sizing.md from the figures (SIZING_N cases each, default 10)
	@bash localstack/native/with-stack.sh $(BENCH_ENV) -- \
	  bash -c '$(BIN) infra apply >/dev/null && $(BIN) bench --per-case --n $${SIZING_N:-10} --json $(CURDIR)/.run/bench/sizing.json'
	@cp .run/bench/sizing.json docs/sizing.json && $(GO) run ./cmd/sizing --from docs/sizing.json --out docs/sizing.md && echo "docs/sizing.md regenerated"

bench-open: setup build ## BENCH_OPEN cases in waiting states on a fresh stack: load rate, disk, memory, task list and decision latencies
	@bash localstack/native/with-stack.sh $(BENCH_OPEN_ENV) -- \
	  bash -c '$(BIN) infra apply >/dev/null && $(BIN) bench --open $(BENCH_OPEN)'

# `make bench-wave`: the same ports as bench-open, in a run directory of its own (a fresh one each time).
BENCH_WAVE ?= 1000
BENCH_WAVE_ENV := $(subst .run/bench-open,.run/bench-wave,$(BENCH_OPEN_ENV))
bench-wave: setup build ## BENCH_WAVE refunds in review fall due at one instant: how long the wave of escalations takes, each escalated once
	@rm -rf $(CURDIR)/.run/bench-wave
	@bash localstack/native/with-stack.sh $(BENCH_WAVE_ENV) -- \
	  bash -c '$(BIN) infra apply >/dev/null && $(BIN) bench --wave $(BENCH_WAVE)'

template: ## regenerate infra/template.yaml from the declaration
	@$(GO) run ./cmd/taxflow infra template > infra/template.yaml

clean: down ## stop the stack, remove bin/ and .run/
	rm -rf bin .run
