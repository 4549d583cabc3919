"""Hostile programs, one per attack and language. Each one PASSES (exit 0 / no exception / no
output for JS) only if its attack succeeded, so a non-pass verdict shows the sandbox held."""

from __future__ import annotations

ATTACKS = ("fork_bomb", "memory_bomb", "infinite_loop", "output_flood", "network", "write_outside",
           "read_home", "kill_parent")
SHELL_BOMB = "f(){ f|f& };f"


def python_sources(port: int, host_file: str, secret: str) -> dict[str, str]:
    return {
        "fork_bomb": "import ctypes\nlibc = ctypes.CDLL(None)\nn = 0\nwhile n < 100000:\n"
                     "    if libc.fork() < 0:\n        raise SystemExit(1)\n    n += 1\n",
        "memory_bomb": "x = []\nfor i in range(64):\n    x.append(bytearray(2**30))\n",
        "infinite_loop": "while True:\n    pass\n",
        "output_flood": "import os\nwhile True:\n    os.write(1, b'x' * 65536)\n",
        "network": f"import socket\nsocket.create_connection(('127.0.0.1', {port}), timeout=3).close()\n",
        "write_outside": f"open({host_file!r}, 'w').write('pwned')\n",
        "read_home": f"open({secret!r}).read()\n",
        "kill_parent": "import ctypes, os\nlibc = ctypes.CDLL(None)\nassert libc.kill(os.getppid(), 9) == 0\n"
                       "assert libc.kill(-1, 9) == 0\n",
    }


def cpp_sources(port, host_file, secret):
    head = ("#include <cstdio>\n#include <cstdlib>\n#include <cstring>\n#include <unistd.h>\n#include <signal.h>\n"
            "#include <sys/socket.h>\n#include <netinet/in.h>\n#include <arpa/inet.h>\n")
    return {k: head + "int main() {\n" + v + "\n}\n" for k, v in {
        "fork_bomb": "while (1) { if (fork() < 0) return 1; }",
        "memory_bomb": "for (int i = 0; i < 64; i++) { char *p = (char *)malloc(1UL << 30); if (!p) return 1;"
                       " memset(p, 1, 1UL << 30); } return 0;",
        "infinite_loop": "volatile int x = 0; while (1) { x++; }",
        "output_flood": "static char b[65536]; memset(b, 'x', sizeof b); while (1) fwrite(b, 1, sizeof b, stdout);",
        "network": f"int s = socket(AF_INET, SOCK_STREAM, 0); sockaddr_in a = {{}}; a.sin_family = AF_INET;"
                   f" a.sin_port = htons({port}); a.sin_addr.s_addr = inet_addr(\"127.0.0.1\");"
                   " return connect(s, (sockaddr *)&a, sizeof a) == 0 ? 0 : 1;",
        "write_outside": f"FILE *f = fopen(\"{host_file}\", \"w\"); return f ? 0 : 1;",
        "read_home": f"FILE *f = fopen(\"{secret}\", \"r\"); return f ? 0 : 1;",
        "kill_parent": "if (kill(getppid(), SIGKILL) != 0) return 1; return kill(-1, SIGKILL) == 0 ? 0 : 1;",
    }.items()}


def java_sources(port, host_file, secret):
    body = {
        "fork_bomb": f"new ProcessBuilder(\"sh\", \"-c\", \"{SHELL_BOMB}\").start(); Thread.sleep(600000);",
        "memory_bomb": "java.util.List<long[]> l = new java.util.ArrayList<>(); while (true) l.add(new long[1 << 27]);",
        "infinite_loop": "long x = 0; while (true) { x++; }",
        "output_flood": "String s = \"x\".repeat(65536); while (true) System.out.print(s);",
        "network": f"new java.net.Socket(\"127.0.0.1\", {port}).close();",
        "write_outside": f"java.nio.file.Files.writeString(java.nio.file.Path.of(\"{host_file}\"), \"pwned\");",
        "read_home": f"java.nio.file.Files.readAllBytes(java.nio.file.Path.of(\"{secret}\"));",
        "kill_parent": "if (!ProcessHandle.current().parent().get().destroyForcibly()) System.exit(1); Thread.sleep(2000);",
    }
    return {k: "public class Main {\n    public static void main(String[] args) throws Exception {\n        "
            + v + "\n    }\n}\n" for k, v in body.items()}


def js_sources(port, host_file, secret):
    # JS passes only with no output at all: every "blocked" path prints
    return {
        "fork_bomb": f"require('child_process').spawn('sh', ['-c', '{SHELL_BOMB}']); setTimeout(() => {{}}, 1e9);",
        "memory_bomb": "const a = []; while (true) a.push(new Array(1e7).fill(1.5));",
        "infinite_loop": "while (true) {}",
        "output_flood": "const s = 'x'.repeat(65536); while (true) require('fs').writeSync(1, s);",
        "network": f"const s = require('net').connect({port}, '127.0.0.1', () => process.exit(0));"
                   " s.on('error', () => { console.log('blocked'); });",
        "write_outside": f"try {{ require('fs').writeFileSync('{host_file}', 'pwned'); }} catch (e) {{ console.log('blocked'); }}",
        "read_home": f"try {{ require('fs').readFileSync('{secret}'); }} catch (e) {{ console.log('blocked'); }}",
        "kill_parent": "try { process.kill(process.ppid, 'SIGKILL'); process.kill(-1, 'SIGKILL'); }"
                       " catch (e) { console.log('blocked'); }",
    }


def go_sources(port, host_file, secret):
    body = {
        "fork_bomb": f"exec.Command(\"sh\", \"-c\", \"{SHELL_BOMB}\").Start(); time.Sleep(600 * time.Second)",
        "memory_bomb": "var keep [][]byte\n\tfor i := 0; i < 64; i++ { b := make([]byte, 1<<30); for j := range b { b[j] = 1 }; keep = append(keep, b) }\n\t_ = keep",
        "infinite_loop": "x := 0\n\tfor { x++ }",
        "output_flood": "b := make([]byte, 65536)\n\tfor { os.Stdout.Write(b) }",
        "network": f"c, err := net.Dial(\"tcp\", \"127.0.0.1:{port}\")\n\tif err != nil {{ t.Fatal(err) }}\n\tc.Close()",
        "write_outside": f"if err := os.WriteFile(\"{host_file}\", []byte(\"pwned\"), 0644); err != nil {{ t.Fatal(err) }}",
        "read_home": f"if _, err := os.ReadFile(\"{secret}\"); err != nil {{ t.Fatal(err) }}",
        "kill_parent": "if err := syscall.Kill(os.Getppid(), syscall.SIGKILL); err != nil { t.Fatal(err) }\n\tsyscall.Kill(-1, syscall.SIGKILL)",
    }
    head = ("package main\n\nimport (\n\t\"net\"\n\t\"os\"\n\t\"os/exec\"\n\t\"syscall\"\n\t\"testing\"\n\t\"time\"\n)\n\n"
            "var _ = net.Dial\nvar _ = exec.Command\nvar _ = syscall.Kill\nvar _ = time.Sleep\nvar _ = os.Getppid\n\n")
    return {k: head + "func TestHostile(t *testing.T) {\n\t" + v + "\n}\n" for k, v in body.items()}


def rust_sources(port, host_file, secret):
    body = {
        "fork_bomb": f"std::process::Command::new(\"sh\").arg(\"-c\").arg(\"{SHELL_BOMB}\").spawn().unwrap();"
                     " std::thread::sleep(std::time::Duration::from_secs(600));",
        "memory_bomb": "let mut keep = Vec::new(); for _ in 0..64 { keep.push(vec![1u8; 1 << 30]); }",
        "infinite_loop": "let mut x: u64 = 0; loop { x = x.wrapping_add(1); std::hint::black_box(x); }",
        "output_flood": "let s = \"x\".repeat(65536); loop { print!(\"{}\", s); }",
        "network": f"std::net::TcpStream::connect(\"127.0.0.1:{port}\").unwrap();",
        "write_outside": f"std::fs::write(\"{host_file}\", \"pwned\").unwrap();",
        "read_home": f"std::fs::read(\"{secret}\").unwrap();",
        "kill_parent": "let ppid = std::os::unix::process::parent_id().to_string();"
                       " assert!(std::process::Command::new(\"kill\").args([\"-9\", &ppid]).status().unwrap().success());"
                       " std::thread::sleep(std::time::Duration::from_secs(2));",
    }
    return {k: "#[cfg(test)]\nmod tests {\n    #[test]\n    fn hostile() {\n        " + v + "\n    }\n}\n"
            for k, v in body.items()}


SOURCES = {"python": python_sources, "mbpp": python_sources, "cpp": cpp_sources, "java": java_sources,
           "js": js_sources, "go": go_sources, "rust": rust_sources}
