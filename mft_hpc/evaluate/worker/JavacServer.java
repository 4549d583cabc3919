// Compile server for the evaluation worker: one warm JVM runs javac (javax.tools) for every Java
// program of a batch, instead of one cold javac JVM per program. Each request compiles
// DIR/Main.java exactly as `javac Main.java` run in DIR would (classpath ".", output beside it).
// Protocol: stdin lines "ID<TAB>DIR"; stdout lines "ID<TAB>RC<TAB>base64(diagnostics)".
import java.io.*;
import java.nio.charset.StandardCharsets;
import java.util.Base64;
import java.util.concurrent.*;
import javax.tools.JavaCompiler;
import javax.tools.ToolProvider;

public class JavacServer {
    public static void main(String[] args) throws Exception {
        JavaCompiler compiler = ToolProvider.getSystemJavaCompiler();
        ExecutorService pool = Executors.newFixedThreadPool(Integer.parseInt(args[0]));
        BufferedReader in = new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8));
        PrintStream out = new PrintStream(new FileOutputStream(FileDescriptor.out), true, "UTF-8");
        String line;
        while ((line = in.readLine()) != null) {
            String[] parts = line.split("\t", 2);
            String id = parts[0], dir = parts[1];
            pool.submit(() -> {
                ByteArrayOutputStream diagnostics = new ByteArrayOutputStream();
                int rc;
                try {
                    rc = compiler.run(null, diagnostics, diagnostics, "-classpath", dir, "-d", dir, dir + "/Main.java");
                } catch (Throwable t) {
                    rc = 99;
                    diagnostics.writeBytes(t.toString().getBytes(StandardCharsets.UTF_8));
                }
                String encoded = Base64.getEncoder().encodeToString(diagnostics.toByteArray());
                synchronized (out) {
                    out.println(id + "\t" + rc + "\t" + encoded);
                }
            });
        }
        pool.shutdown();
    }
}
