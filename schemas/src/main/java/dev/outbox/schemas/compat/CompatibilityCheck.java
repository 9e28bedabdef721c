package dev.outbox.schemas.compat;

import dev.outbox.schemas.AvroCodec;
import java.io.IOException;
import java.io.PrintStream;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Stream;
import org.apache.avro.Schema;
import org.apache.avro.SchemaCompatibility;
import org.apache.avro.SchemaCompatibility.Incompatibility;
import org.apache.avro.SchemaCompatibility.SchemaCompatibilityResult;
import org.apache.avro.SchemaCompatibility.SchemaCompatibilityType;
import org.apache.avro.SchemaCompatibility.SchemaIncompatibilityType;

/**
 * Build-time check that every current Avro schema can read data written by every kept older
 * version of it (backward compatibility under Avro schema resolution).
 *
 * <p>Layout: current schemas are the {@code .avsc} files anywhere under the current directory
 * (each self-contained). Older versions live at {@code <history>/<FullName>/v<N>.avsc}, where
 * {@code FullName} is the current schema's full name. The check reports:
 * <ul>
 *   <li>{@code .avsc} files that cannot be parsed;</li>
 *   <li>each incompatibility between a current schema (reader) and a kept version (writer), as
 *       found by {@link SchemaCompatibility#checkReaderWriterCompatibility(Schema, Schema)};</li>
 *   <li>history files whose schema has another full name than their folder (unless it is one of
 *       the current schema's aliases), history folders without a current schema, files that do
 *       not follow the layout, and two current files defining the same full name.</li>
 * </ul>
 *
 * <p>Command line, as run by the build in phase {@code process-classes}:
 * <pre>CompatibilityCheck &lt;currentDir&gt; &lt;historyDir&gt; [--index &lt;file&gt;] [--verbose]</pre>
 * prints one line per problem on standard error and exits with 1 if there are problems, 2 on a
 * usage error, else 0. With {@code --index}, a passing check writes the schema index that
 * {@link AvroCodec#create()} reads (resource paths under {@link AvroCodec#CURRENT_RESOURCE_ROOT}
 * and {@link AvroCodec#HISTORY_RESOURCE_ROOT}).
 */
public final class CompatibilityCheck {

    private static final Pattern VERSION_FILE = Pattern.compile("v([1-9][0-9]*)\\.avsc");
    private static final String GENERAL_FIX = "add a default to the new field or keep the old field";

    private CompatibilityCheck() {}

    /**
     * Checks the schemas under {@code currentDir} against their kept versions under {@code historyDir}.
     *
     * @return the problems found, in a stable order; empty if everything is compatible
     * @throws IllegalArgumentException if either path is not a directory
     * @throws UncheckedIOException     if the directories cannot be read
     */
    public static List<Problem> check(Path currentDir, Path historyDir) {
        requireDirectory(currentDir, "current schema directory");
        requireDirectory(historyDir, "schema history directory");
        List<Problem> problems = new ArrayList<>();

        Map<String, Path> currentFiles = new TreeMap<>();
        Map<String, Schema> currentSchemas = new TreeMap<>();
        for (Path file : avscFiles(currentDir)) {
            Schema schema = parse(file, problems);
            if (schema == null) {
                continue;
            }
            Path previous = currentFiles.putIfAbsent(schema.getFullName(), file);
            if (previous != null) {
                problems.add(new Problem(
                        Problem.Kind.DUPLICATE_NAME,
                        file,
                        schema.getFullName(),
                        null,
                        null,
                        null,
                        "also defined by " + previous,
                        "define each schema in exactly one current .avsc file"));
            } else {
                currentSchemas.put(schema.getFullName(), schema);
            }
        }

        Map<String, Map<Integer, Path>> history = historyFiles(historyDir, problems);
        for (Map.Entry<String, Map<Integer, Path>> folder : history.entrySet()) {
            String fullName = folder.getKey();
            Schema current = currentSchemas.get(fullName);
            if (current == null) {
                problems.add(
                        new Problem(
                                Problem.Kind.NO_CURRENT_SCHEMA,
                                historyDir.resolve(fullName),
                                fullName,
                                null,
                                null,
                                null,
                                "history folder has no current schema named " + fullName + " under " + currentDir,
                                "name the folder after the current schema's full name (namespace.Name), or delete it if the type is retired"));
            }
            for (Path older : folder.getValue().values()) {
                Schema old = parse(older, problems);
                if (old == null || current == null) {
                    continue;
                }
                if (!old.getFullName().equals(fullName) && !aliases(current).contains(old.getFullName())) {
                    problems.add(new Problem(
                            Problem.Kind.NAME_MISMATCH,
                            older,
                            old.getFullName(),
                            null,
                            null,
                            null,
                            "kept as an older version of " + fullName + " but defines " + old.getFullName(),
                            "keep only older versions of " + fullName + " in this folder (move the file to "
                                    + historyDir.resolve(old.getFullName()) + "), or, for a rename, list \""
                                    + old.getFullName() + "\" in the aliases of " + fullName));
                    continue;
                }
                compare(currentFiles.get(fullName), current, older, old, problems);
            }
        }
        return List.copyOf(problems);
    }

    /** Command-line entry point; see the class documentation. Exits the JVM with the status of {@link #run}. */
    public static void main(String[] args) {
        int status = run(args, System.out, System.err);
        if (status != 0) {
            System.exit(status);
        }
    }

    /**
     * Runs the command line without exiting the JVM.
     *
     * @return 0 if all schemas are compatible, 1 if problems were found, 2 on a usage error
     */
    public static int run(String[] args, PrintStream out, PrintStream err) {
        List<String> positional = new ArrayList<>();
        Path index = null;
        boolean verbose = false;
        for (int i = 0; i < args.length; i++) {
            switch (args[i]) {
                case "--index" -> {
                    if (i + 1 >= args.length) {
                        return usage(err, "--index needs a file argument");
                    }
                    index = Path.of(args[++i]);
                }
                case "--verbose" -> verbose = true;
                default -> {
                    if (args[i].startsWith("--")) {
                        return usage(err, "unknown option " + args[i]);
                    }
                    positional.add(args[i]);
                }
            }
        }
        if (positional.size() != 2) {
            return usage(err, "expected 2 directories, got " + positional.size() + " argument(s)");
        }
        Path currentDir = Path.of(positional.get(0));
        Path historyDir = Path.of(positional.get(1));
        List<Problem> problems;
        try {
            problems = check(currentDir, historyDir);
        } catch (IllegalArgumentException | UncheckedIOException e) {
            return usage(err, e.getMessage());
        }
        if (!problems.isEmpty()) {
            err.println("Avro schema compatibility check FAILED with " + problems.size() + " problem(s):");
            for (Problem problem : problems) {
                err.println("  " + problem.message());
            }
            err.println("The current schema in " + currentDir + " must read data written by every kept version in "
                    + historyDir
                    + "/<FullName>/v<N>.avsc. To evolve a schema, copy the current file to the next vN there"
                    + " first, then change it compatibly (see schemas/README.md).");
            return 1;
        }
        if (index != null) {
            try {
                writeIndex(currentDir, historyDir, index);
            } catch (UncheckedIOException e) {
                err.println("cannot write schema index " + index + ": " + e.getMessage());
                return 2;
            }
        }
        if (verbose) {
            out.println("Avro schema compatibility check passed for " + currentDir + " against " + historyDir);
        }
        return 0;
    }

    /**
     * Writes the schema index read by {@link AvroCodec#create()}: one classpath resource path per
     * line for every {@code .avsc} under both directories, as the build packages them.
     */
    public static void writeIndex(Path currentDir, Path historyDir, Path indexFile) {
        List<String> lines = new ArrayList<>();
        lines.add(
                "# Avro schemas packaged in this jar, read by dev.outbox.schemas.AvroCodec.create(); generated by the build");
        for (Path file : avscFiles(currentDir)) {
            lines.add(AvroCodec.CURRENT_RESOURCE_ROOT + resourcePath(currentDir.relativize(file)));
        }
        for (Path file : avscFiles(historyDir)) {
            lines.add(AvroCodec.HISTORY_RESOURCE_ROOT + resourcePath(historyDir.relativize(file)));
        }
        try {
            Path parent = indexFile.toAbsolutePath().getParent();
            if (parent != null) {
                Files.createDirectories(parent);
            }
            Files.write(indexFile, lines, StandardCharsets.UTF_8);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    private static void compare(Path currentFile, Schema current, Path olderFile, Schema old, List<Problem> problems) {
        SchemaCompatibilityResult result =
                SchemaCompatibility.checkReaderWriterCompatibility(current, old).getResult();
        if (result.getCompatibility() != SchemaCompatibilityType.INCOMPATIBLE) {
            return;
        }
        for (Incompatibility incompatibility : result.getIncompatibilities()) {
            String pointer = incompatibility.getLocation();
            String path = fieldPath(current, pointer);
            problems.add(new Problem(
                    Problem.Kind.INCOMPATIBLE,
                    currentFile,
                    current.getFullName(),
                    olderFile,
                    incompatibility.getType().name(),
                    path == null ? pointer : pointer + " (" + path + ")",
                    detail(incompatibility),
                    fix(incompatibility.getType())));
        }
    }

    private static String detail(Incompatibility incompatibility) {
        return switch (incompatibility.getType()) {
            case READER_FIELD_MISSING_DEFAULT_VALUE ->
                "field '" + incompatibility.getMessage()
                        + "' has no default, and data written by the older version does not have it";
            default -> incompatibility.getMessage();
        };
    }

    private static String fix(SchemaIncompatibilityType type) {
        return switch (type) {
            case READER_FIELD_MISSING_DEFAULT_VALUE -> GENERAL_FIX;
            case TYPE_MISMATCH ->
                "keep the old field with its old type (Avro only promotes int to long/float/double, "
                        + "long to float/double, float to double and string to/from bytes); for another type add a new field "
                        + "with a default instead. In general: " + GENERAL_FIX;
            case NAME_MISMATCH -> "keep the old name, or list the old full name in the \"aliases\" of the renamed type";
            case FIXED_SIZE_MISMATCH -> "keep the fixed size; for another size add a new field with a default";
            case MISSING_ENUM_SYMBOLS -> "keep the removed enum symbols, or give the enum a \"default\" symbol";
            case MISSING_UNION_BRANCH -> "keep the removed union branches";
            default -> GENERAL_FIX;
        };
    }

    private static Schema parse(Path file, List<Problem> problems) {
        try {
            return new Schema.Parser().parse(file.toFile());
        } catch (IOException | RuntimeException e) {
            String detail = e.getMessage() == null
                    ? e.getClass().getName()
                    : e.getMessage().strip();
            problems.add(
                    new Problem(
                            Problem.Kind.UNPARSEABLE,
                            file,
                            null,
                            null,
                            null,
                            null,
                            "cannot parse Avro schema: "
                                    + detail.replaceAll("\\s+", " ").replaceAll("\\[Source: [^;]*; ", "["),
                            "make the file a valid, self-contained Avro schema (JSON syntax, known types, defaults that match their field types)"));
            return null;
        }
    }

    private static Map<String, Map<Integer, Path>> historyFiles(Path historyDir, List<Problem> problems) {
        Map<String, Map<Integer, Path>> byName = new TreeMap<>();
        for (Path file : avscFiles(historyDir)) {
            Path relative = historyDir.relativize(file);
            Matcher version = VERSION_FILE.matcher(relative.getFileName().toString());
            if (relative.getNameCount() != 2 || !version.matches()) {
                problems.add(
                        new Problem(
                                Problem.Kind.BAD_HISTORY_LAYOUT,
                                file,
                                null,
                                null,
                                null,
                                null,
                                "kept versions must be at " + historyDir + "/<FullName>/v<N>.avsc",
                                "move the file to <FullName>/v<N>.avsc, where FullName is the schema's namespace.Name and N counts from 1"));
                continue;
            }
            byName.computeIfAbsent(relative.getName(0).toString(), name -> new TreeMap<>())
                    .put(Integer.parseInt(version.group(1)), file);
        }
        return byName;
    }

    private static List<Path> avscFiles(Path dir) {
        try (Stream<Path> files = Files.walk(dir)) {
            return files.filter(Files::isRegularFile)
                    .filter(file -> file.getFileName().toString().endsWith(".avsc"))
                    .sorted(Comparator.comparing(Path::toString))
                    .toList();
        } catch (IOException e) {
            throw new UncheckedIOException("cannot list " + dir, e);
        }
    }

    private static List<String> aliases(Schema schema) {
        return switch (schema.getType()) {
            case RECORD, ENUM, FIXED -> List.copyOf(schema.getAliases());
            default -> List.of();
        };
    }

    private static String resourcePath(Path relative) {
        List<String> parts = new ArrayList<>();
        relative.forEach(part -> parts.add(part.toString()));
        return String.join("/", parts);
    }

    /**
     * Turns a JSON pointer into the reader schema (as Avro reports locations, e.g.
     * {@code /fields/5/type/items/fields/1/type}) into a field path like
     * {@code OrderPlaced.lines[].quantity}; {@code null} if it cannot.
     */
    static String fieldPath(Schema schema, String pointer) {
        if (pointer == null || !pointer.startsWith("/")) {
            return null;
        }
        try {
            String[] tokens = pointer.substring(1).split("/");
            StringBuilder path = new StringBuilder(schema.getName());
            Schema at = schema;
            boolean named = false;
            for (int i = 0; i < tokens.length; i++) {
                String token = tokens[i];
                switch (token) {
                    case "" -> {}
                    case "fields" -> {
                        Schema.Field field = at.getFields().get(Integer.parseInt(tokens[++i]));
                        path.append('.').append(field.name());
                        at = field.schema();
                        named = true;
                    }
                    case "type" -> {}
                    case "items" -> {
                        at = at.getElementType();
                        path.append("[]");
                    }
                    case "values" -> {
                        at = at.getValueType();
                        path.append("{}");
                    }
                    case "symbols", "size", "name" -> {
                        return named
                                ? path.append(" (").append(token).append(')').toString()
                                : null;
                    }
                    default -> {
                        if (at.getType() != Schema.Type.UNION) {
                            return null;
                        }
                        int branch = Integer.parseInt(token);
                        at = at.getTypes().get(branch);
                        path.append("<").append(at.getType().getName()).append('>');
                    }
                }
            }
            return named ? path.toString() : null;
        } catch (RuntimeException e) {
            return null;
        }
    }

    private static int usage(PrintStream err, String message) {
        err.println("CompatibilityCheck: " + message);
        err.println("usage: CompatibilityCheck <currentDir> <historyDir> [--index <file>] [--verbose]");
        return 2;
    }

    private static void requireDirectory(Path dir, String what) {
        if (dir == null || !Files.isDirectory(dir)) {
            throw new IllegalArgumentException(what + " " + dir + " is not a directory");
        }
    }
}
