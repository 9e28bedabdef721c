package dev.outbox.examples;

import static org.assertj.core.api.Assertions.assertThat;

import dev.outbox.consumer.IdempotentConsumer;
import dev.outbox.core.Outbox;
import dev.outbox.http.server.IdempotencyStore;
import dev.outbox.migrations.OutboxMigrations;
import dev.outbox.relay.Relay;
import dev.outbox.schemas.AvroCodec;
import dev.outbox.testkit.JavaSources;
import java.io.IOException;
import java.lang.reflect.Constructor;
import java.lang.reflect.Field;
import java.lang.reflect.Method;
import java.lang.reflect.Modifier;
import java.net.URISyntaxException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Set;
import java.util.TreeSet;
import java.util.jar.JarFile;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;

/**
 * The layering rule of the public API: no public or protected member of a public class outside an
 * {@code internal} package mentions an {@code internal} type, so users can never come to depend on
 * one. Checked over every library module's classes. And the code users read and copy, the examples
 * and the benchmarks, uses the public API only: no {@code internal} type in their sources.
 */
class ApiLayeringTest {

    private static final List<Class<?>> MODULE_MARKERS = List.of(
            OutboxMigrations.class,
            AvroCodec.class,
            Outbox.class,
            Relay.class,
            IdempotentConsumer.class,
            IdempotencyStore.class);

    /** The modules whose code stands for an application's: they may use the public API only. */
    private static final List<String> APPLICATION_MODULES = List.of("examples", "examples-spring-boot", "benchmarks");

    /**
     * Uses of internal types that the application modules may keep, each with the reason. The relay
     * benchmark's plain-producer baseline must run with exactly the producer configuration the relay
     * gives its own producer (acks, idempotence, linger, batch size, timeouts), which no public API
     * returns; copying the values would let the baseline drift from the relay unnoticed.
     */
    private static final Set<String> ALLOWED = Set.of(
            "benchmarks/src/main/java/dev/outbox/bench/relay/BenchContext.java: dev.outbox.relay.internal.ProducerSettings");

    /** A reference to a type of an internal package: {@code dev.outbox.<module>.internal.<Type>}. */
    private static final Pattern INTERNAL_TYPE =
            Pattern.compile("\\bdev\\.outbox\\.(?:[a-z0-9_]+\\.)*internal\\.(?:[a-z0-9_]+\\.)*[A-Z]\\w*");

    @Test
    void examplesAndBenchmarksUseOnlyThePublicApi() {
        Path root = JavaSources.projectRoot();
        List<Path> files = JavaSources.files(root, APPLICATION_MODULES.toArray(String[]::new));
        Set<String> uses = new TreeSet<>();
        List<String> violations = new ArrayList<>();
        for (Path file : files) {
            String code = JavaSources.code(JavaSources.read(file));
            Matcher m = INTERNAL_TYPE.matcher(code);
            while (m.find()) {
                String use = root.relativize(file).toString().replace('\\', '/') + ": " + m.group();
                uses.add(use);
                if (!ALLOWED.contains(use)) {
                    violations.add(use + " (line " + JavaSources.lineOf(code, m.start()) + ")");
                }
            }
        }
        assertThat(files)
                .as("sources of %s below %s", APPLICATION_MODULES, root)
                .hasSizeGreaterThan(20);
        assertThat(violations)
                .as("internal types used by the examples or the benchmarks; use the public API instead")
                .isEmpty();
        assertThat(uses)
                .as("allowed uses of internal types that are gone; remove them from ALLOWED")
                .containsAll(ALLOWED);
    }

    @Test
    void publicApiNeverExposesInternalTypes() throws Exception {
        List<String> violations = new ArrayList<>();
        int checked = 0;
        for (Class<?> marker : MODULE_MARKERS) {
            for (String name : classNames(marker)) {
                if (name.contains(".internal.") || name.startsWith("dev.outbox.migrations.jooq.")) {
                    continue;
                }
                Class<?> c = Class.forName(name, false, getClass().getClassLoader());
                if (!Modifier.isPublic(c.getModifiers())) {
                    continue;
                }
                checked++;
                for (Method m : c.getDeclaredMethods()) {
                    if (exposed(m.getModifiers()) && !m.isSynthetic()) {
                        check(violations, c, m.toGenericString());
                    }
                }
                for (Constructor<?> k : c.getDeclaredConstructors()) {
                    if (exposed(k.getModifiers())) {
                        check(violations, c, k.toGenericString());
                    }
                }
                for (Field f : c.getDeclaredFields()) {
                    if (exposed(f.getModifiers())) {
                        check(violations, c, f.toGenericString());
                    }
                }
                if (c.getSuperclass() != null) {
                    check(violations, c, "extends " + c.getGenericSuperclass().getTypeName());
                }
            }
        }
        assertThat(checked).as("public API classes found").isGreaterThan(30);
        assertThat(violations)
                .as("public API members that mention internal types")
                .isEmpty();
    }

    private static boolean exposed(int modifiers) {
        return Modifier.isPublic(modifiers) || Modifier.isProtected(modifiers);
    }

    private static void check(List<String> violations, Class<?> owner, String signature) {
        // the owner's own name may contain ".internal." only when it is internal, which was skipped
        if (signature.matches(".*\\bdev\\.outbox\\.[a-z.]*\\.internal\\..*")) {
            violations.add(owner.getName() + ": " + signature);
        }
    }

    private static List<String> classNames(Class<?> marker) throws IOException, URISyntaxException {
        Path location = Path.of(
                marker.getProtectionDomain().getCodeSource().getLocation().toURI());
        List<String> names = new ArrayList<>();
        if (Files.isDirectory(location)) {
            try (Stream<Path> files = Files.walk(location)) {
                files.filter(p -> p.toString().endsWith(".class"))
                        .map(p -> location.relativize(p).toString())
                        .forEach(n -> names.add(n));
            }
        } else {
            try (JarFile jar = new JarFile(location.toFile())) {
                Collections.list(jar.entries()).stream()
                        .map(e -> e.getName())
                        .filter(n -> n.endsWith(".class"))
                        .forEach(names::add);
            }
        }
        return names.stream()
                .filter(n -> n.startsWith("dev/outbox/")
                        && !n.endsWith("package-info.class")
                        && !n.endsWith("module-info.class"))
                .map(n -> n.substring(0, n.length() - ".class".length()).replace('/', '.'))
                .toList();
    }
}
