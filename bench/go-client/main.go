// The peer to beat: containerd's own Go client, in process, as dockerd and nerdctl use it. The same
// lifecycle as bench/subjects.ts (runc v2 shim, a rootfs directory, /bin/true, null IO), driven line by
// line over stdin so that the bench can interleave it with the library and ctr on one containerd:
//
//	one            → "ms userMs sysMs"  one lifecycle: wall time and this process's CPU spent on it
//	par N          → "ms userMs sysMs"  N lifecycles at once: wall time and CPU for all of them
//	quit
package main

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/containerd/containerd"
	"github.com/containerd/containerd/cio"
	"github.com/containerd/containerd/namespaces"
	"github.com/containerd/containerd/oci"
)

var counter int

func lifecycle(ctx context.Context, c *containerd.Client, id, rootfs string) error {
	ctr, err := c.NewContainer(ctx, id,
		containerd.WithNewSpec(oci.WithDefaultSpec(), oci.WithRootFSPath(rootfs), oci.WithProcessArgs("/bin/true")),
		containerd.WithRuntime("io.containerd.runc.v2", nil))
	if err != nil {
		return err
	}
	task, err := ctr.NewTask(ctx, cio.NullIO)
	if err != nil {
		return err
	}
	ch, err := task.Wait(ctx)
	if err != nil {
		return err
	}
	if err := task.Start(ctx); err != nil {
		return err
	}
	if status := <-ch; status.ExitCode() != 0 {
		return fmt.Errorf("%s exited %d", id, status.ExitCode())
	}
	if _, err := task.Delete(ctx); err != nil {
		return err
	}
	return ctr.Delete(ctx)
}

func cpu() (float64, float64) {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	ms := func(tv syscall.Timeval) float64 { return float64(tv.Sec)*1000 + float64(tv.Usec)/1000 }
	return ms(ru.Utime), ms(ru.Stime)
}

func measure(run func() error) (string, error) {
	u0, s0 := cpu()
	t0 := time.Now()
	err := run()
	wall := float64(time.Since(t0).Microseconds()) / 1000
	u1, s1 := cpu()
	return fmt.Sprintf("%.3f %.3f %.3f", wall, u1-u0, s1-s0), err
}

func main() {
	sock, namespace, rootfs := os.Args[1], os.Args[2], os.Args[3]
	c, err := containerd.New(sock)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	ctx := namespaces.WithNamespace(context.Background(), namespace)
	next := func() string {
		counter++
		return fmt.Sprintf("go-%d-%d", os.Getpid(), counter)
	}
	in := bufio.NewScanner(os.Stdin)
	out := bufio.NewWriter(os.Stdout)
	for in.Scan() {
		fields := strings.Fields(in.Text())
		if len(fields) == 0 {
			continue
		}
		var line string
		switch fields[0] {
		case "one":
			line, err = measure(func() error { return lifecycle(ctx, c, next(), rootfs) })
		case "par":
			n, _ := strconv.Atoi(fields[1])
			ids := make([]string, n)
			for i := range ids {
				ids[i] = next()
			}
			line, err = measure(func() error {
				var wg sync.WaitGroup
				errs := make(chan error, n)
				for _, id := range ids {
					wg.Add(1)
					go func(id string) {
						defer wg.Done()
						if err := lifecycle(ctx, c, id, rootfs); err != nil {
							errs <- err
						}
					}(id)
				}
				wg.Wait()
				close(errs)
				return <-errs
			})
		case "quit":
			return
		default:
			err = fmt.Errorf("unknown command %q", fields[0])
		}
		if err != nil {
			fmt.Fprintf(out, "error %s\n", strings.ReplaceAll(err.Error(), "\n", " "))
		} else {
			fmt.Fprintln(out, line)
		}
		out.Flush()
	}
}
