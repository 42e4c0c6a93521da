// SPDX-License-Identifier: Apache-2.0
// redtap_saturation_bench: the sampling cost of TcpMonitor with many open connections, run
// by tests/bench/saturation_bench.sh. It drives the monitor on its own (not the agent) because
// it reads the sampler's internal figures (CPU per pass, connection-walk period), which the
// agent does not export. The integration test drives the agent (`redtap run`).
//
//   redtap_saturation_bench [--connections N] [--seconds S]
//       Opens N loopback connections (2N sockets), samples for S seconds and prints the
//       sampler's CPU time per second of sampling. REDTAP_BENCH_LISTENERS_ONLY=1: the cost of
//       the listener passes alone (connections never walked after the first pass).
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iostream>
#include <string>
#include <thread>
#include <vector>

#include "userspace/saturation/tcp_monitor.h"

namespace {

// Holds the server side of the benchmark's connections in a child process (each process
// stays below RLIMIT_NOFILE with 10,000 connections). Returns the child's pid.
pid_t StartBenchServer(int n, int lfd, const int done_pipe[2]) {
  pid_t pid = fork();
  if (pid != 0) return pid;
  close(done_pipe[1]);  // EOF on done_pipe[0] once the parent closes its end
  std::vector<int> fds;
  fds.reserve(n);
  for (int i = 0; i < n; i++) {
    int s = accept(lfd, nullptr, nullptr);
    if (s < 0) _exit(1);
    fds.push_back(s);
  }
  char c;
  while (read(done_pipe[0], &c, 1) < 0 && errno == EINTR) {
  }
  _exit(0);
}

int Bench(int n, int seconds) {
  using redtap::saturation::TcpMonitor;
  rlimit rl{};
  getrlimit(RLIMIT_NOFILE, &rl);
  rl.rlim_cur = rl.rlim_max;
  setrlimit(RLIMIT_NOFILE, &rl);
  if (rl.rlim_cur < static_cast<rlim_t>(n) + 256) {
    fprintf(stderr, "RLIMIT_NOFILE %llu is too low for %d connections per process\n",
            static_cast<unsigned long long>(rl.rlim_cur), n);
    return 1;
  }
  redtap::saturation::Options opt;
  opt.max_sockets = 4 * n + 4096;
  if (getenv("REDTAP_BENCH_LISTENERS_ONLY")) {  // cost of the listener passes alone
    opt.max_cpu_fraction = 1e-9;
    opt.max_full_interval = std::chrono::hours(1);
  }
  auto mon = TcpMonitor::Start(opt);
  if (!mon.ok()) {
    std::cerr << mon.error() << "\n";
    return 1;
  }
  int lfd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t alen = sizeof(a);
  if (bind(lfd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0 || listen(lfd, 4096) != 0 ||
      getsockname(lfd, reinterpret_cast<sockaddr*>(&a), &alen) != 0) {
    perror("listen");
    return 1;
  }
  int pipefd[2];
  if (pipe(pipefd) != 0) return 1;
  pid_t server = StartBenchServer(n, lfd, pipefd);
  close(pipefd[0]);
  std::vector<int> fds;
  fds.reserve(n);
  for (int i = 0; i < n; i++) {
    int c = socket(AF_INET, SOCK_STREAM, 0);
    if (c < 0 || connect(c, reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0) {
      perror("connect");
      kill(server, SIGKILL);
      return 1;
    }
    fds.push_back(c);
  }
  auto& m = *mon.value();
  m.WaitSamples(3, std::chrono::seconds(10));  // let the first passes see every socket
  auto s0 = m.stats();
  auto t0 = std::chrono::steady_clock::now();
  std::this_thread::sleep_for(std::chrono::seconds(seconds));
  auto s1 = m.stats();
  double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  uint64_t samples = s1.samples - s0.samples;
  double cpu = (s1.sample_cpu_ns - s0.sample_cpu_ns) / 1e9;
  std::string comm;
  {
    std::ifstream f("/proc/self/comm");
    std::getline(f, comm);
  }
  auto in = m.SeriesLive({comm, redtap::saturation::Direction::kInbound, ntohs(a.sin_port)});
  auto out = m.SeriesLive({comm, redtap::saturation::Direction::kOutbound, 0});
  printf("connections: %d (%d sockets)\n", n, 2 * n);
  printf("active gauge: inbound=%llu outbound=%llu\n",
         in ? static_cast<unsigned long long>(in->active) : 0ULL,
         out ? static_cast<unsigned long long>(out->active) : 0ULL);
  printf("samples: %llu in %.2f s, last sample %.3f ms wall\n",
         static_cast<unsigned long long>(samples), wall, s1.last_sample_wall_ns / 1e6);
  printf("sampler cpu: %.3f ms per sample, %.4f%% of one core\n",
         samples ? cpu * 1e3 / samples : 0.0, 100.0 * cpu / wall);
  printf("connection walks: %llu in the window, last one %.3f ms cpu, every %llu ms\n",
         static_cast<unsigned long long>(s1.full_passes - s0.full_passes),
         s1.last_full_pass_cpu_ns / 1e6, static_cast<unsigned long long>(s1.full_interval_ms));
  fflush(stdout);
  m.Stop();
  for (int fd : fds) close(fd);
  close(lfd);
  close(pipefd[1]);  // the server child exits
  int status = 0;
  waitpid(server, &status, 0);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  int bench_n = 10000, bench_s = 10;
  for (int i = 1; i < argc; i++) {
    std::string a = argv[i];
    auto next = [&]() -> std::string {
      if (i + 1 >= argc) {
        std::cerr << a << " needs a value\n";
        exit(2);
      }
      return argv[++i];
    };
    if (a == "--connections") {
      bench_n = std::stoi(next());
    } else if (a == "--seconds") {
      bench_s = std::stoi(next());
    } else {
      std::cerr << "usage: redtap_saturation_bench [--connections N] [--seconds S]\n";
      return 2;
    }
  }
  if (bench_n <= 0 || bench_s <= 0) {
    std::cerr << "--connections and --seconds must be positive\n";
    return 2;
  }
  return Bench(bench_n, bench_s);
}
