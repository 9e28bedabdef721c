package dev.outbox.core;

import java.io.File;
import java.net.MalformedURLException;
import java.net.URL;
import java.net.URLClassLoader;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.function.Predicate;

/** A class loader over this test JVM's class path, with no parent but the platform's: every library in it loads afresh. */
final class IsolatedClassLoader {
    private IsolatedClassLoader() {}

    /**
     * @param keep which class path entries to keep
     * @return a new class loader; close it when done
     */
    static URLClassLoader of(Predicate<String> keep) throws MalformedURLException {
        List<URL> urls = new ArrayList<>();
        for (String entry : System.getProperty("java.class.path").split(File.pathSeparator)) {
            if (keep.test(entry)) {
                urls.add(Path.of(entry).toUri().toURL());
            }
        }
        return new URLClassLoader(urls.toArray(URL[]::new), ClassLoader.getPlatformClassLoader());
    }
}
