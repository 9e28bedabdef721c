package dev.outbox.relay.process;

import ch.qos.logback.classic.Level;
import ch.qos.logback.classic.LoggerContext;
import ch.qos.logback.classic.encoder.PatternLayoutEncoder;
import ch.qos.logback.classic.spi.ILoggingEvent;
import ch.qos.logback.core.ConsoleAppender;
import org.slf4j.ILoggerFactory;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Configures Logback for the process: one line per event on standard output (standard error is
 * kept for the one-line start-up errors), the relay's own loggers at the chosen level and the
 * chatty client libraries at WARN. Does nothing when the logging backend is not Logback, or when
 * a configuration was supplied: {@code -Dlogback.configurationFile}, or a {@code logback.xml} (or
 * {@code logback-test.xml}) on the class path.
 */
final class Logging {
  private Logging() {}

  static void configure(String level) {
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
    PatternLayoutEncoder encoder = new PatternLayoutEncoder();
    encoder.setContext(context);
    encoder.setPattern("%d{yyyy-MM-dd'T'HH:mm:ss.SSSXXX} %-5level [%thread] %logger{36} - %msg%n");
    encoder.start();
    ConsoleAppender<ILoggingEvent> console = new ConsoleAppender<>();
    console.setContext(context);
    console.setName("stdout");
    console.setEncoder(encoder);
    console.start();
    Level chosen = Level.toLevel(level, Level.INFO);
    ch.qos.logback.classic.Logger root = context.getLogger(Logger.ROOT_LOGGER_NAME);
    root.detachAndStopAllAppenders();
    root.addAppender(console);
    root.setLevel(chosen == Level.INFO ? Level.WARN : chosen);
    context.getLogger("dev.outbox").setLevel(chosen);
  }
}
