package dev.outbox.testkit;

import org.junit.jupiter.api.extension.ExtensionContext;
import org.junit.jupiter.api.extension.ParameterContext;
import org.junit.jupiter.api.extension.ParameterResolutionException;
import org.junit.jupiter.api.extension.ParameterResolver;

/**
 * JUnit 5 extension that injects real services: a {@link TestDatabase} per test class (fresh,
 * migrated, dropped after the class) and the JVM's shared {@link TestKafka} broker.
 *
 * <pre>{@code
 * @ExtendWith(RealServices.class)
 * class OrdersIT {
 *   @Test
 *   void appends(TestDatabase db, TestKafka kafka) { ... }
 * }
 * }</pre>
 */
public final class RealServices implements ParameterResolver {

    private static final ExtensionContext.Namespace NAMESPACE = ExtensionContext.Namespace.create(RealServices.class);
    private static PostgresServer postgres;

    /**
     * @return the PostgreSQL server this JVM uses, located on first use
     * @throws ServiceUnavailableException when none can be reached
     */
    public static synchronized PostgresServer postgres() {
        if (postgres == null) {
            postgres = PostgresLocator.locate(PostgresLocator.Options.fromEnvironment());
        }
        return postgres;
    }

    /** @return the Kafka broker this JVM uses, started on first use */
    public static TestKafka kafka() {
        return TestKafka.shared();
    }

    @Override
    public boolean supportsParameter(ParameterContext parameter, ExtensionContext context) {
        Class<?> type = parameter.getParameter().getType();
        return type == TestDatabase.class || type == TestKafka.class;
    }

    @Override
    public Object resolveParameter(ParameterContext parameter, ExtensionContext context) {
        Class<?> type = parameter.getParameter().getType();
        if (type == TestKafka.class) {
            return kafka();
        }
        ExtensionContext classContext = context;
        while (classContext.getTestMethod().isPresent()
                && classContext.getParent().isPresent()) {
            classContext = classContext.getParent().get();
        }
        if (type == TestDatabase.class) {
            return classContext
                    .getStore(NAMESPACE)
                    .getOrComputeIfAbsent("db", k -> TestDatabase.create(), TestDatabase.class);
        }
        throw new ParameterResolutionException("unsupported parameter " + type);
    }
}
