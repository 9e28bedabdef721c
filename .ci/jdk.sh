# Sourced by ./dev and .ci/run: exports JAVA_HOME pointing at a JDK 21 or newer, or stops with the fix.
java_major() { # prints the feature version of the java binary in $1
  "$1" -XshowSettings:properties -version 2>&1 | sed -n 's/^ *java.specification.version = //p' | head -1 | cut -d. -f1
}

select_jdk() {
  local candidate
  if [ -n "${JAVA_HOME:-}" ] && [ -x "$JAVA_HOME/bin/javac" ] && [ "$(java_major "$JAVA_HOME/bin/java")" -ge 21 ]; then
    export JAVA_HOME
  elif command -v javac >/dev/null \
      && [ "$(java_major "$(dirname "$(readlink -f "$(command -v javac)")")/java")" -ge 21 ]; then
    # the java beside javac: a JRE 21 on the PATH may sit beside an older JDK's javac
    JAVA_HOME="$(dirname "$(dirname "$(readlink -f "$(command -v javac)")")")"
    export JAVA_HOME
  else
    JAVA_HOME=""
    for candidate in $(ls -d /usr/lib/jvm/*/ /opt/java/*/ 2>/dev/null | sort -rV); do
      if [ -x "$candidate/bin/javac" ] && [ "$(java_major "$candidate/bin/java")" -ge 21 ]; then
        export JAVA_HOME="${candidate%/}"
        break
      fi
    done
    if [ -z "$JAVA_HOME" ]; then
      echo "No JDK 21 or newer found (looked at JAVA_HOME, javac on PATH, /usr/lib/jvm/*, /opt/java/*)." >&2
      echo "Fix: install one (Temurin 21 from adoptium.net, or openjdk-21-jdk-headless where the distribution has it;" >&2
      echo "Debian 12's own packages stop at 17) or set JAVA_HOME to it." >&2
      exit 2
    fi
  fi
  export PATH="$JAVA_HOME/bin:$PATH"
}
