package dev.outbox.migrations.internal;

/**
 * Keeps jOOQ from warning, once per JVM, that a PostgreSQL server "is older than what dialect POSTGRES supports".
 *
 * <p>jOOQ's open-source {@code POSTGRES} dialect is the one of the newest PostgreSQL releases (17 and newer for
 * jOOQ 3.20); on the first connection it acquires it compares the server's version with that and warns about any
 * older server. Every statement this project renders runs on PostgreSQL 13 and newer (the {@code postgres-versions}
 * build profile runs the tests on 13 and 18), so on 13 to 16 the warning is one a user would have to learn to
 * ignore.
 *
 * <p>{@link #quiet()} uses jOOQ's own per-logger switch, the system property {@value #PROPERTY} (read by jOOQ's
 * {@code JooqLogger} each time it logs), and sets it to {@code ERROR} unless it is set already: no logging
 * configuration of the application changes, and every other jOOQ warning is still logged. An application that wants
 * the warning back sets the property to {@code WARN} itself. The switch covers that one message for every jOOQ user
 * in the JVM, which is the same message about the same server.
 */
public final class JooqVersionCheck {

    /** jOOQ's threshold for the logger of the version check, {@code DefaultExecuteContext.logVersionSupport}. */
    public static final String PROPERTY = "org.jooq.log.org.jooq.impl.DefaultExecuteContext.logVersionSupport";

    private JooqVersionCheck() {}

    /**
     * Lowers the threshold of jOOQ's version-check logger to {@code ERROR} unless the application chose one. Call it
     * before the first statement, where a DSLContext is built for a user's connection or data source.
     */
    public static void quiet() {
        try {
            if (System.getProperty(PROPERTY) == null) {
                System.setProperty(PROPERTY, "ERROR");
            }
        } catch (SecurityException e) {
            // a JVM that forbids it keeps jOOQ's default: the warning, once
        }
    }
}
