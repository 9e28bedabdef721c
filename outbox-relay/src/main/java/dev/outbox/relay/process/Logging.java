package dev.outbox.relay.process;

import ch.qos.logback.classic.Level;
import ch.qos.logback.classic.LoggerContext;
import ch.qos.logback.classic.encoder.JsonEncoder;
import ch.qos.logback.classic.encoder.PatternLayoutEncoder;
import ch.qos.logback.classic.spi.ILoggingEvent;
import ch.qos.logback.core.ConsoleAppender;
import ch.qos.logback.core.encoder.Encoder;
import org.slf4j.ILoggerFactory;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Configures Logback for the process: one line per event on standard output (standard error is
 * kept for the one-line start-up errors), as text or as JSON (Logback's own {@link JsonEncoder}),
 * the relay's own loggers at the chosen level and the chatty client libraries at WARN. Does nothing when the logging backend is not Logback, or when
 * a configuration was supplied: {@code -Dlogback.configurationFile}, or a {@code logback.xml} (or
 * {@code logback-test.xml}) on the class path.
 */
final class Logging {
    private Logging() {}

    /**
     * jOOQ's open-source {@code POSTGRES} dialect is the one of the newest PostgreSQL release, and
     * jOOQ warns once per process that any older server is "older than what the dialect supports",
     * although the SQL the relay renders runs on every PostgreSQL it supports (13 and newer; the
     * postgres-versions build profile runs the relay's tests on the oldest and the newest). That one
     * logger stays at ERROR, so the warning does not teach operators to ignore warnings.
     */
    static final String JOOQ_VERSION_SUPPORT_LOGGER = "org.jooq.impl.DefaultExecuteContext.logVersionSupport";

    /** Logs to standard error, before the command is known. */
    static void configure(String level) {
        configure(level, "text", true);
    }

    /**
     * @param toStandardError for the admin commands, whose standard output is their result (JSON
     *     with {@code --json}): a client library's warning (Kafka's, when a broker is down) must not
     *     mix with it
     */
    static void configure(String level, String format, boolean toStandardError) {
        ClassLoader loader = Logging.class.getClassLoader();
        if (System.getProperty("logback.configurationFile") != null
                || loader.getResource("logback.xml") != null
                || loader.getResource("logback-test.xml") != null) {
            return;
        }
        ILoggerFactory factory = LoggerFactory.getILoggerFactory();
        if (!(factory instanceof LoggerContext context)) {
            return;
        }
        context.reset();
        Encoder<ILoggingEvent> encoder;
        if ("json".equals(format)) {
            JsonEncoder json = new JsonEncoder();
            json.setContext(context);
            json.setWithSequenceNumber(false);
            json.setWithContext(false);
            json.setWithArguments(false);
            json.setWithFormattedMessage(true);
            json.setWithMessage(false);
            encoder = json;
        } else {
            PatternLayoutEncoder text = new PatternLayoutEncoder();
            text.setContext(context);
            text.setPattern("%d{yyyy-MM-dd'T'HH:mm:ss.SSSXXX} %-5level [%thread] %logger{36} - %msg%n");
            encoder = text;
        }
        encoder.start();
        ConsoleAppender<ILoggingEvent> console = new ConsoleAppender<>();
        console.setContext(context);
        console.setName(toStandardError ? "stderr" : "stdout");
        console.setTarget(toStandardError ? "System.err" : "System.out");
        console.setEncoder(encoder);
        console.start();
        Level chosen = Level.toLevel(level, Level.INFO);
        ch.qos.logback.classic.Logger root = context.getLogger(Logger.ROOT_LOGGER_NAME);
        root.detachAndStopAllAppenders();
        root.addAppender(console);
        root.setLevel(chosen == Level.INFO ? Level.WARN : chosen);
        context.getLogger("dev.outbox").setLevel(chosen);
        context.getLogger(JOOQ_VERSION_SUPPORT_LOGGER).setLevel(Level.ERROR);
    }
}
