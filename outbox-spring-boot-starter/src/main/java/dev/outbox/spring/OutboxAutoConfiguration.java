package dev.outbox.spring;

import dev.outbox.consumer.IdempotentConsumer;
import dev.outbox.consumer.ProcessedMessages;
import dev.outbox.core.Outbox;
import dev.outbox.http.server.IdempotencyFilter;
import dev.outbox.http.server.IdempotencyStore;
import dev.outbox.http.server.ScopeResolver;
import dev.outbox.migrations.internal.JooqVersionCheck;
import dev.outbox.relay.Relay;
import dev.outbox.spring.internal.ConsumersHealthIndicator;
import dev.outbox.spring.internal.EmbeddedRelay;
import dev.outbox.spring.internal.EmbeddedRelayBuilder;
import dev.outbox.spring.internal.IdempotencyPathsCondition;
import dev.outbox.spring.internal.OutboxMigrationsInitializer;
import dev.outbox.spring.internal.RelayHealthIndicator;
import dev.outbox.spring.internal.SpringMvcGate;
import dev.outbox.spring.internal.SpringTransactionProvider;
import io.micrometer.core.instrument.MeterRegistry;
import io.micrometer.core.instrument.Metrics;
import java.util.List;
import javax.sql.DataSource;
import org.jooq.DSLContext;
import org.jooq.SQLDialect;
import org.jooq.impl.DSL;
import org.jooq.impl.DataSourceConnectionProvider;
import org.jooq.impl.DefaultConfiguration;
import org.springframework.beans.factory.ObjectProvider;
import org.springframework.boot.autoconfigure.AutoConfiguration;
import org.springframework.boot.autoconfigure.condition.ConditionalOnBean;
import org.springframework.boot.autoconfigure.condition.ConditionalOnClass;
import org.springframework.boot.autoconfigure.condition.ConditionalOnMissingBean;
import org.springframework.boot.autoconfigure.condition.ConditionalOnProperty;
import org.springframework.boot.autoconfigure.condition.ConditionalOnSingleCandidate;
import org.springframework.boot.autoconfigure.condition.ConditionalOnWebApplication;
import org.springframework.boot.context.properties.EnableConfigurationProperties;
import org.springframework.boot.health.contributor.HealthIndicator;
import org.springframework.boot.web.servlet.FilterRegistrationBean;
import org.springframework.context.annotation.Bean;
import org.springframework.context.annotation.Conditional;
import org.springframework.context.annotation.Configuration;
import org.springframework.core.env.Environment;
import org.springframework.jdbc.datasource.TransactionAwareDataSourceProxy;
import org.springframework.transaction.PlatformTransactionManager;

/**
 * Auto-configuration of the outbox for a Spring Boot application with one PostgreSQL {@code
 * DataSource}:
 *
 * <ul>
 *   <li>the outbox migrations, with a Flyway instance and history table of their own ({@code
 *       outbox.migrations.enabled}, default on);
 *   <li>{@link Outbox} and {@link OutboxTemplate}, whose appends join the Spring-managed
 *       transaction;
 *   <li>{@link ProcessedMessages} and {@link ProcessedMessagesTemplate}, the dedup claim for
 *       {@code @KafkaListener} methods;
 *   <li>the {@link IdempotencyFilter} on {@code outbox.idempotency.paths}, its key transaction a
 *       Spring-managed one, so {@code @Transactional} code inside the request joins it;
 *   <li>an embedded relay when {@code outbox.relay.enabled=true};
 *   <li>meters in the application's {@code MeterRegistry}; health indicators {@code outboxRelay}
 *       and {@code outboxConsumers} (every {@link IdempotentConsumer} bean) when Actuator is there.
 * </ul>
 *
 * <p>Every bean backs off when the application defines its own of the same type.
 */
@AutoConfiguration(
        afterName = {
            "org.springframework.boot.jdbc.autoconfigure.DataSourceAutoConfiguration",
            "org.springframework.boot.jdbc.autoconfigure.DataSourceTransactionManagerAutoConfiguration",
            "org.springframework.boot.hibernate.autoconfigure.HibernateJpaAutoConfiguration",
            "org.springframework.boot.transaction.autoconfigure.TransactionAutoConfiguration",
            "org.springframework.boot.micrometer.metrics.autoconfigure.CompositeMeterRegistryAutoConfiguration"
        })
@ConditionalOnSingleCandidate(DataSource.class)
@EnableConfigurationProperties(OutboxProperties.class)
public class OutboxAutoConfiguration {

    /** The bean name of the outbox migrations, for {@code @DependsOn}. */
    public static final String MIGRATIONS_BEAN = "outboxMigrations";

    /** The bean name of the Idempotency-Key filter's registration. */
    public static final String FILTER_REGISTRATION_BEAN = "outboxIdempotencyFilterRegistration";

    @Bean(MIGRATIONS_BEAN)
    @ConditionalOnProperty(prefix = "outbox.migrations", name = "enabled", havingValue = "true", matchIfMissing = true)
    OutboxMigrationsInitializer outboxMigrations(DataSource dataSource, OutboxProperties properties) {
        return new OutboxMigrationsInitializer(dataSource, properties.getSchema(), properties.getShards());
    }

    @Bean
    @ConditionalOnMissingBean
    Outbox outbox(OutboxProperties properties, ObjectProvider<OutboxMigrationsInitializer> migrations) {
        migrations.ifAvailable(m -> {});
        return Outbox.builder()
                .schema(properties.getSchema())
                .shards(properties.getShards())
                .build();
    }

    @Bean
    @ConditionalOnMissingBean
    OutboxTemplate outboxTemplate(Outbox outbox, DataSource dataSource) {
        return new OutboxTemplate(outbox, transactionBound(dataSource));
    }

    @Bean
    @ConditionalOnMissingBean
    ProcessedMessages processedMessages(
            OutboxProperties properties, ObjectProvider<OutboxMigrationsInitializer> migrations) {
        migrations.ifAvailable(m -> {});
        return ProcessedMessages.create(properties.getSchema());
    }

    @Bean
    @ConditionalOnMissingBean
    ProcessedMessagesTemplate processedMessagesTemplate(
            ProcessedMessages processed, DataSource dataSource, ObjectProvider<MeterRegistry> registry) {
        return new ProcessedMessagesTemplate(processed, dataSource, meters(registry));
    }

    /** A jOOQ context on the connection of the Spring-managed transaction, whatever manages it. */
    static DSLContext transactionBound(DataSource dataSource) {
        JooqVersionCheck.quiet();
        return DSL.using(new DefaultConfiguration()
                .set(SQLDialect.POSTGRES)
                .set(new DataSourceConnectionProvider(new TransactionAwareDataSourceProxy(dataSource))));
    }

    static MeterRegistry meters(ObjectProvider<MeterRegistry> registry) {
        return registry.getIfUnique(() -> Metrics.globalRegistry);
    }

    /** The Idempotency-Key filter, when the application serves HTTP and names paths to protect. */
    @Configuration(proxyBeanMethods = false)
    @ConditionalOnWebApplication(type = ConditionalOnWebApplication.Type.SERVLET)
    @ConditionalOnClass(
            name = {"jakarta.servlet.Filter", "org.springframework.boot.web.servlet.FilterRegistrationBean"})
    @Conditional(IdempotencyPathsCondition.class)
    static class IdempotencyConfiguration {

        @Bean
        @ConditionalOnMissingBean
        IdempotencyStore outboxIdempotencyStore(
                DataSource dataSource,
                ObjectProvider<PlatformTransactionManager> transactionManager,
                OutboxProperties properties,
                ObjectProvider<MeterRegistry> registry,
                ObjectProvider<OutboxMigrationsInitializer> migrations) {
            migrations.ifAvailable(m -> {});
            PlatformTransactionManager manager = transactionManager.getIfUnique();
            if (manager == null) {
                throw new IllegalStateException(
                        "outbox.idempotency.paths is set, but there is no single"
                                + " PlatformTransactionManager bean for the Idempotency-Key filter's transaction to join; add"
                                + " spring-boot-starter-jdbc or spring-boot-starter-data-jpa, or mark one transaction manager @Primary");
            }
            DSLContext dsl = DSL.using(
                    transactionBound(dataSource).configuration().derive(new SpringTransactionProvider(manager)));
            OutboxProperties.Idempotency p = properties.getIdempotency();
            return IdempotencyStore.builder()
                    .dsl(dsl)
                    .schema(properties.getSchema())
                    .ttl(p.getTtl())
                    .lockTimeout(p.getLockTimeout())
                    .retryAfter(p.getRetryAfter())
                    .meterRegistry(meters(registry))
                    .build();
        }

        @Bean
        @ConditionalOnMissingBean
        IdempotencyFilter outboxIdempotencyFilter(
                IdempotencyStore store,
                OutboxProperties properties,
                ObjectProvider<MeterRegistry> registry,
                ObjectProvider<ScopeResolver> scope) {
            OutboxProperties.Idempotency p = properties.getIdempotency();
            IdempotencyFilter.Builder builder = IdempotencyFilter.builder(store)
                    .paths(p.getPaths().toArray(String[]::new))
                    .methods(p.getMethods().toArray(String[]::new))
                    .maxBodyBytes(p.getMaxBodyBytes())
                    .meterRegistry(meters(registry));
            // a ScopeResolver bean replaces the default (principal + method + route, 401 without a caller)
            scope.ifUnique(builder::scopeResolver);
            return builder.build();
        }

        @Bean(FILTER_REGISTRATION_BEAN)
        @ConditionalOnMissingBean(name = FILTER_REGISTRATION_BEAN)
        FilterRegistrationBean<IdempotencyFilter> outboxIdempotencyFilterRegistration(
                IdempotencyFilter filter, OutboxProperties properties) {
            FilterRegistrationBean<IdempotencyFilter> registration = new FilterRegistrationBean<>(filter);
            registration.setName("outboxIdempotencyFilter");
            registration.setUrlPatterns(properties.getIdempotency().getPaths());
            registration.setOrder(properties.getIdempotency().getFilterOrder());
            return registration;
        }

        /** The start-up gate over the Spring MVC endpoints; {@code outbox.idempotency.gate.enabled=false} turns it off. */
        @Configuration(proxyBeanMethods = false)
        @ConditionalOnClass(name = "org.springframework.web.servlet.mvc.method.annotation.RequestMappingHandlerMapping")
        @ConditionalOnProperty(
                prefix = "outbox.idempotency.gate",
                name = "enabled",
                havingValue = "true",
                matchIfMissing = true)
        static class GateConfiguration {
            @Bean
            @ConditionalOnMissingBean
            SpringMvcGate outboxIdempotencyGate(
                    IdempotencyFilter filter, OutboxProperties properties, Environment environment) {
                String servletPath = environment.getProperty("spring.mvc.servlet.path", "");
                String prefix = servletPath.equals("/") ? "" : servletPath;
                return new SpringMvcGate(
                        filter,
                        properties.getIdempotency().getGate(),
                        prefix,
                        prefix + environment.getProperty("server.error.path", "/error"));
            }
        }
    }

    /** The embedded relay; the standalone relay process remains the recommended deployment. */
    @Configuration(proxyBeanMethods = false)
    @ConditionalOnClass(Relay.class)
    @ConditionalOnProperty(prefix = "outbox.relay", name = "enabled", havingValue = "true")
    static class RelayConfiguration {

        @Bean(destroyMethod = "close")
        @ConditionalOnMissingBean
        Relay outboxRelay(
                DataSource dataSource,
                OutboxProperties properties,
                Environment environment,
                ObjectProvider<MeterRegistry> registry,
                ObjectProvider<OutboxMigrationsInitializer> migrations) {
            migrations.ifAvailable(m -> {});
            return EmbeddedRelayBuilder.build(dataSource, properties, environment, meters(registry));
        }

        @Bean
        EmbeddedRelay outboxEmbeddedRelay(Relay relay) {
            return new EmbeddedRelay(relay);
        }

        @Configuration(proxyBeanMethods = false)
        @ConditionalOnClass(HealthIndicator.class)
        static class RelayHealthConfiguration {
            @Bean
            @ConditionalOnMissingBean(name = "outboxRelayHealthIndicator")
            HealthIndicator outboxRelayHealthIndicator(Relay relay) {
                return new RelayHealthIndicator(relay);
            }
        }
    }

    /** Health of the application's {@link IdempotentConsumer} beans. */
    @Configuration(proxyBeanMethods = false)
    @ConditionalOnClass(HealthIndicator.class)
    @ConditionalOnBean(IdempotentConsumer.class)
    static class ConsumerHealthConfiguration {
        @Bean
        @ConditionalOnMissingBean(name = "outboxConsumersHealthIndicator")
        HealthIndicator outboxConsumersHealthIndicator(List<IdempotentConsumer> consumers) {
            return new ConsumersHealthIndicator(consumers);
        }
    }
}
