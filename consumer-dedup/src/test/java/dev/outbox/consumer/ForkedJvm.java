package dev.outbox.consumer;

import dev.outbox.testkit.TestDatabase;
import dev.outbox.testkit.TestKafka;
import java.io.File;
import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/**
 * Starts a test consumer ({@link CrashTestConsumer}, {@link BufferedBytesTestConsumer}) in a JVM of its own
 * on the test class path, so that a test can kill it at any moment or bound its heap, with its output and
 * errors in a log file.
 */
final class ForkedJvm {
    private ForkedJvm() {}

    /**
     * @param jvmOptions the options before the class path, such as the heap size
     * @param main a class whose arguments are the bootstrap servers, the JDBC URL, user and password of the
     *     test services, then {@code args}
     */
    static Process start(
            List<String> jvmOptions, Class<?> main, TestDatabase db, TestKafka kafka, List<String> args, File log)
            throws IOException {
        List<String> command = new ArrayList<>();
        command.add(Path.of(System.getProperty("java.home"), "bin", "java").toString());
        command.addAll(jvmOptions);
        command.add("-cp");
        command.add(System.getProperty("java.class.path"));
        command.add(main.getName());
        command.addAll(List.of(kafka.bootstrapServers(), db.jdbcUrl(), db.user(), db.password()));
        command.addAll(args);
        return new ProcessBuilder(command)
                .redirectErrorStream(true)
                .redirectOutput(log)
                .start();
    }
}
