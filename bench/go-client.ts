import { type ChildProcess, spawn } from "node:child_process";
import { join } from "node:path";
import { createInterface, type Interface } from "node:readline";
import { runCommand } from "./measure.js";

/** Wall and client CPU (user + system) of one measured block. */
export interface GoSample {
  ms: number;
  cpuMs: number;
}

/** The Go program in bench/go-client (containerd's Go client in process), driven line by line (see its header). */
export class GoClient {
  private readonly lines: Interface;
  private readonly waiting: ((line: string) => void)[] = [];

  private constructor(private readonly child: ChildProcess) {
    this.lines = createInterface({ input: child.stdout! });
    this.lines.on("line", (line) => this.waiting.shift()?.(line));
  }

  /** Builds it into `buildDir` (offline, Debian's Go; a second build there reuses the cache) and starts it. */
  static async start(
    buildDir: string,
    address: string,
    namespace: string,
    rootfs: string,
  ): Promise<GoClient> {
    const build = await runCommand("bash", [join(import.meta.dirname, "go-client/build.sh"), buildDir]);
    if (build.code !== 0) throw new Error(`building bench/go-client failed: ${build.stderr}`);
    const binary = build.stdout.trim().split("\n").at(-1)!;
    const child = spawn(binary, [address, namespace, rootfs], { stdio: ["pipe", "pipe", "inherit"] });
    return new GoClient(child);
  }

  async run(command: string): Promise<GoSample> {
    const line = await new Promise<string>((resolve) => {
      this.waiting.push(resolve);
      this.child.stdin!.write(`${command}\n`);
    });
    if (line.startsWith("error")) throw new Error(`go client: ${line}`);
    const [ms, userMs, sysMs] = line.split(" ").map(Number) as [number, number, number];
    return { ms, cpuMs: userMs + sysMs };
  }

  get pid(): number {
    return this.child.pid!;
  }

  close(): void {
    this.child.stdin!.end("quit\n");
  }
}
