// Command rollcall runs the Rollcall service and its housekeeping commands.
//
//	rollcall [serve]                 run the HTTP service (default)
//	rollcall migrate up|down|status  manage the schema
//	rollcall seed FILE...            load programmes from seed files (idempotent)
//	rollcall sweep                   run the retention sweep once (cron)
//	rollcall dev-token [flags]       print a token from the dev issuer (dev mode only)
//	rollcall whoami [TOKEN|-]        print the issuer|subject a token names
//	rollcall grant [flags]           grant a role (the first admin without ROLLCALL_BOOTSTRAP_ADMIN)
//	rollcall provider add [flags]    register an identity provider
//	rollcall ready                   exit 0 when the local service's /readyz answers 200
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "rollcall:", err)
		os.Exit(1)
	}
}

// run is main without the process: tests call it with their own arguments,
// environment and output.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	cmd := "serve"
	if len(args) > 0 {
		cmd, args = args[0], args[1:]
	}
	switch cmd {
	case "serve":
		return serve(ctx, args, getenv, stdout, stderr)
	case "migrate":
		return migrate(ctx, args, getenv, stdout)
	case "seed":
		return seedCmd(ctx, args, getenv, stdout)
	case "sweep":
		return sweepCmd(ctx, args, getenv, stdout)
	case "dev-token":
		return devToken(ctx, args, getenv, stdout, stderr)
	case "whoami":
		return whoami(args, os.Stdin, stdout)
	case "grant":
		return grantCmd(ctx, args, getenv, stdout, stderr)
	case "provider":
		return providerCmd(ctx, args, getenv, stdout, stderr)
	case "ready":
		return ready(ctx, args, getenv, stdout)
	case "help", "-h", "--help":
		fmt.Fprintln(stdout, usage)
		return nil
	}
	return fmt.Errorf("unknown command %q\n%s", cmd, usage)
}

const usage = `usage:
  rollcall [serve]                 run the service
  rollcall migrate up|down|status  manage the database schema
  rollcall seed FILE...            load programmes from seed files (idempotent)
  rollcall sweep                   run the retention sweep once (for cron)
  rollcall dev-token [flags]       print a dev-mode token (ROLLCALL_DEV=1 only)
  rollcall whoami [TOKEN|-]        print the issuer|subject a token names (reads stdin without TOKEN)
  rollcall grant [flags]           grant a role: --programme --role --issuer --subject [--organisation] [--body]
  rollcall provider add [flags]    register an identity provider: --programme [--organisation] --issuer --client-id ...
  rollcall ready                   exit 0 when the local service's /readyz answers 200 (container health check)`
