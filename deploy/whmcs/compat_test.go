package whmcs_test

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// The hook files must run on PHP 7.4 - 8.3, but only a newer php-cli is
// available here, whose `php -l` accepts PHP 8 syntax. tests/php74_compat.php
// lexes them with the running PHP's tokenizer and flags syntax and library
// functions newer than PHP 7.4.

// compatFiles are the files WHMCS loads (plus the checker, which promises
// to be PHP 7.4 code itself).
var compatFiles = []string{
	"hookworker.php",
	"hookworker_check.php",
	"hookworker_config.php.example",
	filepath.Join("modules", "servers", "hookworker", "hookworker.php"),
	filepath.Join("tests", "php74_compat.php"),
}

// runCompat runs the checker on files and returns its stdout and exit code.
// The output is logged if the test fails.
func runCompat(t *testing.T, files ...string) (out string, code int) {
	t.Helper()
	php := checkerPHP(t)
	args := append([]string{filepath.Join(hookDir(t), "tests", "php74_compat.php")}, files...)
	cmd := exec.Command(php, args...)
	var stdout, stderr strings.Builder
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	var exit *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &exit):
		code = exit.ExitCode()
	default:
		t.Fatalf("php74_compat.php: %v", err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("php74_compat.php %s: exit %d\nstdout:\n%s\nstderr:\n%s", strings.Join(files, " "), code, stdout.String(), stderr.String())
		}
	})
	return stdout.String(), code
}

var phpVersionIDs sync.Map // PHP command → PHP_VERSION_ID

// checkerPHP is the PHP that runs php74_compat.php, which needs PHP >= 8.1:
// the PHP under test (phpBinary) when it is new enough, else php from PATH.
// Under an older PHP (HOOKWORKER_TEST_PHP pointing at PHP 7.4) the hooks
// themselves run on it in the other tests, and the snippets the checker
// must accept are still linted by it.
func checkerPHP(t *testing.T) string {
	t.Helper()
	php := phpBinary(t)
	id, ok := phpVersionIDs.Load(php)
	if !ok {
		out, err := exec.Command(php, "-r", "echo PHP_VERSION_ID;").Output()
		if err != nil {
			t.Fatalf("%s -r 'echo PHP_VERSION_ID;': %v", php, err)
		}
		n, err := strconv.Atoi(strings.TrimSpace(string(out)))
		if err != nil {
			t.Fatalf("PHP_VERSION_ID of %s: %q", php, out)
		}
		id, _ = phpVersionIDs.LoadOrStore(php, n)
	}
	if id.(int) >= 80100 {
		return php
	}
	host, err := exec.LookPath("php")
	if err != nil {
		t.Skipf("php74_compat.php needs PHP >= 8.1; %s is %d and no php on PATH", php, id)
	}
	return host
}

// writeSnippet writes src to a fresh file in a temporary directory.
func writeSnippet(t *testing.T, name, src string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name+".php")
	if err := os.WriteFile(p, []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestHooksUsePHP74Syntax(t *testing.T) {
	phpBinary(t)
	for _, f := range compatFiles {
		t.Run(filepath.Base(f), func(t *testing.T) {
			p := filepath.Join(hookDir(t), f)
			if _, err := os.Stat(p); err != nil {
				t.Fatal(err)
			}
			out, code := runCompat(t, p)
			if code != 0 || out != "" {
				t.Errorf("%s uses PHP > 7.4 (exit %d):\n%s", f, code, out)
			}
		})
	}
}

func TestCompatCheckerFindsNewerSyntax(t *testing.T) {
	php := phpBinary(t)
	// Each snippet has its construct on line 2 unless line says otherwise.
	newer := []struct {
		name string
		src  string
		want string // "<construct> needs PHP <version>"
		line int
	}{
		{"match", `$r = match ($x) { 1 => 'a', default => 'b' };`, "match expression needs PHP 8.0", 0},
		{"nullsafe", `$n = $user?->name;`, "nullsafe operator ?-> needs PHP 8.0", 0},
		{"nullsafe_in_string", `$s = "hi {$user?->name}";`, "nullsafe operator ?-> needs PHP 8.0", 0},
		{"attribute", "#[Deprecated]\nfunction f() {}", "attribute #[...] needs PHP 8.0", 0},
		{"enum", "enum Suit: string {\n case Hearts = 'h';\n}", "enum needs PHP 8.1", 0},
		{"readonly_property", "class P {\n public readonly int $x;\n}", "readonly property needs PHP 8.1", 3},
		{"readonly_class", "final readonly class P {}", "readonly class needs PHP 8.2", 0},
		{"octal", `$m = 0o755;`, "explicit octal literal 0o755 needs PHP 8.1", 0},

		{"named_arg_first", `f(bar: 1);`, "named argument bar: needs PHP 8.0", 0},
		{"named_arg_later", `f(1, $x ? A : B, bar: 2);`, "named argument bar: needs PHP 8.0", 0},
		{"named_arg_keyword", `f(array: 1);`, "named argument array: needs PHP 8.0", 0},
		{"named_arg_method", "$o->m(\n  1,\n  strict: true,\n);", "named argument strict: needs PHP 8.0", 4},
		{"named_arg_new", `$o = new Foo(name: 'x');`, "named argument name: needs PHP 8.0", 0},
		{"named_arg_static", `Foo::bar(x: 1);`, "named argument x: needs PHP 8.0", 0},
		{"named_arg_nested", `f(g(1), [h(a: 1)]);`, "named argument a: needs PHP 8.0", 0},

		{"str_contains", `if (str_contains($a, 'b')) {}`, "function str_contains() needs PHP 8.0", 0},
		{"str_contains_fq", `$x = \str_contains($a, 'b');`, "function str_contains() needs PHP 8.0", 0},
		{"str_starts_with", `$x = str_starts_with($a, 'b');`, "function str_starts_with() needs PHP 8.0", 0},
		{"str_ends_with", `$x = str_ends_with($a, 'b');`, "function str_ends_with() needs PHP 8.0", 0},
		{"get_debug_type", `$x = get_debug_type($a);`, "function get_debug_type() needs PHP 8.0", 0},
		{"fdiv", `$x = fdiv(1, 0);`, "function fdiv() needs PHP 8.0", 0},
		{"get_resource_id", `$x = get_resource_id($fh);`, "function get_resource_id() needs PHP 8.0", 0},
		{"preg_last_error_msg", `$x = preg_last_error_msg();`, "function preg_last_error_msg() needs PHP 8.0", 0},
		{"array_is_list", `$x = array_is_list($a);`, "function array_is_list() needs PHP 8.1", 0},
		{"json_validate", `$x = json_validate($s);`, "function json_validate() needs PHP 8.3", 0},
		{"mb_str_pad", `$x = mb_str_pad($s, 10);`, "function mb_str_pad() needs PHP 8.3", 0},
		{"array_find", `$x = array_find($a, 'is_int');`, "function array_find() needs PHP 8.4", 0},
		{"new_class", `$m = new WeakMap();`, "class WeakMap needs PHP 8.0", 0},
		{"new_class_fq", `throw new \ValueError('x');`, "class ValueError needs PHP 8.0", 0},
		{"implements_class", "class S implements Countable, Stringable {}", "class Stringable needs PHP 8.0", 0},

		{"union_param", `function f(int|string $x) {}`, "union type needs PHP 8.0", 0},
		{"union_return", `function f(): int|false {}`, "union type needs PHP 8.0", 0},
		{"union_closure_return", `$f = function () use ($a): ?int { return 1; }; $g = fn(): int|string => 1;`, "union type needs PHP 8.0", 0},
		{"union_property", "class A {\n  private int|string $x = 1;\n}", "union type needs PHP 8.0", 3},
		{"mixed_param", `function f(mixed $x) {}`, "mixed type needs PHP 8.0", 0},
		{"mixed_return", "interface I {\n  public function f(): mixed;\n}", "mixed type needs PHP 8.0", 3},
		{"never", `function f(): never { exit(1); }`, "never type needs PHP 8.1", 0},
		{"standalone_false", `function f(): false { return false; }`, "standalone false type needs PHP 8.2", 0},
		{"standalone_null", `function f(null $x) {}`, "standalone null type needs PHP 8.2", 0},
		{"true_type", `function f(): true { return true; }`, "true type needs PHP 8.2", 0},
		{"static_return", "class A {\n  public function f(): static { return $this; }\n}", "static return type needs PHP 8.0", 3},
		{"intersection", `function f(Countable&Traversable $x) {}`, "intersection type needs PHP 8.1", 0},
		{"dnf", `function f((A&B)|null $x) {}`, "DNF type (A&B)|C needs PHP 8.2", 0},
		{"promotion", "class A {\n  public function __construct(private int $x) {}\n}", "constructor property promotion needs PHP 8.0", 3},
		{"trailing_comma_params", "function f(\n  $a,\n  $b,\n) {}", "trailing comma in a parameter list needs PHP 8.0", 4},
		{"trailing_comma_closure", `$f = function ($a,) {};`, "trailing comma in a parameter list needs PHP 8.0", 0},
		{"trailing_comma_fn", `$f = fn($a,) => $a;`, "trailing comma in a parameter list needs PHP 8.0", 0},
		{"trailing_comma_use", `$f = function () use ($a, $b,) {};`, "trailing comma in a closure use list needs PHP 8.0", 0},
		{"catch_without_variable", "try {\n} catch (Exception) {\n}", "catch without a variable needs PHP 8.0", 3},
		{"throw_after_coalesce", `$v = $x ?? throw new E();`, "throw expression needs PHP 8.0", 0},
		{"throw_after_arrow", `$f = fn() => throw new E();`, "throw expression needs PHP 8.0", 0},
		{"throw_after_assign", `$v = throw new E();`, "throw expression needs PHP 8.0", 0},
		{"throw_ternary_then", `$v = $c ? throw new E() : 1;`, "throw expression needs PHP 8.0", 0},
		{"throw_ternary_else", `$v = $c ? 1 : throw new E();`, "throw expression needs PHP 8.0", 0},
		{"throw_short_ternary", `$v = $c ?: throw new E();`, "throw expression needs PHP 8.0", 0},
		{"throw_argument", `f(1, throw new E());`, "throw expression needs PHP 8.0", 0},
		{"throw_first_argument", `f(throw new E());`, "throw expression needs PHP 8.0", 0},
		{"throw_after_or", `$h = fopen('x', 'r') or throw new E();`, "throw expression needs PHP 8.0", 0},
		{"object_class", `$c = $obj::class;`, "::class on an object needs PHP 8.0", 0},
		{"call_class", `$c = $this->get()::class;`, "::class on an object needs PHP 8.0", 0},
		{"first_class_callable", `$f = strlen(...);`, "first-class callable syntax (...) needs PHP 8.1", 0},
		{"first_class_callable_method", `$f = $o->m(...);`, "first-class callable syntax (...) needs PHP 8.1", 0},
		{"new_in_default", `function f($l = new Logger()) {}`, "new in a parameter default needs PHP 8.1", 0},
		{"new_in_default_array", `function f($l = [1, new Logger()]) {}`, "new in a parameter default needs PHP 8.1", 0},
		{"new_expression", `$o = new ($cls)();`, "new (expression) needs PHP 8.0", 0},
		{"final_const", "class A {\n  final public const X = 1;\n}", "final class constant needs PHP 8.1", 3},
		{"typed_const", "class A {\n  const int X = 1;\n}", "typed class constant needs PHP 8.3", 3},
		{"dynamic_const_fetch", `$v = Foo::{$name};`, "dynamic class constant fetch ::{...} needs PHP 8.3", 0},
	}
	for _, c := range newer {
		t.Run(c.name, func(t *testing.T) {
			p := writeSnippet(t, c.name, "<?php\n"+c.src+"\n")
			out, code := runCompat(t, p)
			line := c.line
			if line == 0 {
				line = 2
			}
			want := p + ":" + strconv.Itoa(line) + ": " + c.want + "\n"
			if code != 1 || !strings.Contains(out, want) {
				t.Errorf("exit %d, want 1 and %q in:\n%s", code, want, out)
			}
		})
	}

	// Valid PHP 7.4: nothing to report (and php -l agrees it is valid).
	php74 := []struct{ name, src string }{
		{"ternary_constants", `$a = $b ? FOO : BAR;
$c = f($b ? FOO : BAR, $x ?: BAZ);
$d = f(A, $b ? B : C, D ? E : F);
$e = [$b ? X : Y, Z => $b ? (P) : (Q)];
$g = $b ? f(A) : g(B, C);
$h = f($b ? A\B : \C);`},
		{"case_labels", `switch ($x) {
    case FOO:
        throw new Exception('foo');
    case Bar::BAZ:
    case 'a':
        break;
    default:
        throw new Exception('default');
}
$r = array_map(function ($v) {
    switch ($v) {
        case A:
            return 1;
    }
    return 0;
}, $list);`},
		{"goto_label", `goto done;
echo 1;
done:
echo 2;
f(function () {
    retry:
    if (g()) {
        goto retry;
    }
});`},
		{"alternative_syntax", `if (A):
    echo 1;
elseif (B):
    throw new Exception('b');
else:
    echo 3;
endif;
foreach ($a as $v):
endforeach;
while (X):
endwhile;
switch ($x):
    case A:
        break;
endswitch;`},
		{"arrow_fn", `$f = fn($x) => $x * 2;
$g = fn(int $x): ?int => $x ? A : null;
$h = array_map(fn($v) => $v ? A : B, $list);
$i = static fn(array &$a, ...$rest): array => $a;`},
		{"coalesce_assign", `$a['k'] ??= 1;
$b = $c ?? $d ?? E;`},
		{"typed_property", `class A
{
    public int $x = 0;
    private ?string $y = null;
    protected static array $z = [];
    public \Foo\Bar $bar;
    public iterable $it;
    var $untyped;
    const ENUM = 1;
    public const MATCH = 2;
}`},
		{"numeric_separator", `$n = 1_000_000 + 0x7FFF_FFFF + 0b1010_0101 + 0755 + 1_0.5;`},
		{"array_spread", `$a = [...$b, ...f(), 1];
$c = array(...$d);
f(...$args);
f(1, ...$args);`},
		{"trailing_comma_call", `f(1, 2,);
$o->m($a,);
Foo::bar($a, $b,);
$x = new Foo(1,);
$y = [1, 2,];
$z = array(1, 2,);
parent::__construct($a, $b,);`},
		{"member_named_match", `$x->match(1);
Foo::match(2);
$x->enum = $x->readonly;
$x->list();
class M
{
    public function match($a) { return $a; }
    public static function enum() {}
    public function readonly() {}
    public function list() {}
}`},
		{"php8_function_names_elsewhere", `$o->str_contains('a');
Foo::str_starts_with('a');
$s = 'str_contains';
$n = Foo\str_ends_with('a', 'b');
class P
{
    public function get_debug_type() {}
}
if (!function_exists('array_is_list')) {
    function array_is_list(array $a): bool
    {
        return $a === [] || array_keys($a) === range(0, count($a) - 1);
    }
}
$l = array_is_list([1]);
if (function_exists('fsync')) {
    fsync($fh);
}`},
		{"class_constants", `$a = Foo::class;
$b = static::class;
$c = self::class;
$d = \Foo\Bar::class;
$e = Foo::{'bar'}();
$f = Foo::$prop;`},
		{"functions_and_types", `function &refRet(array &$a, ?int $b = null, int ...$rest): ?array { return $a; }
function v(): void {}
function o(object $o, iterable $i, callable $c, float $f = 1.0, bool $b = false, $n = null): object { return $o; }
$f = function &(array &$a) use (&$b, $c): array { return $a; };
$g = static function () {};
$h = function () use ($a) {};
abstract class A
{
    abstract protected function f(int $a, string $b = 'x'): ?string;
    public function __construct(int $x, array $y = [A, B]) {}
}`},
		{"throw_statements", `if ($x) throw new E();
if ($x) { throw new E(); }
foreach ($a as $b) throw new E();
if ($x):
    throw new E();
else:
    throw new E();
endif;
try {
    throw new E();
} catch (A | B $e) {
    throw $e;
} catch (\Exception $e) {
} finally {
}`},
		{"new_and_classes", `$a = new class(1) extends Foo implements Bar, Baz {
    public function __construct($x) {}
};
$b = new static();
$c = new self;
$d = new $cls();
$e = new Foo\Bar(new Baz());
if ($x instanceof Foo) {}
try {} catch (\ValueError $e) {}
if (class_exists('WeakMap')) { $m = new WeakMap(); }`},
		{"strings", `$s = "a {$b->c} ${d} $e[0] {$f['g']} {$h->i()}";
$t = <<<EOT
match ({$x}) { } ?-> #[ str_contains(a: 1)
EOT;
$u = 'f(bar: 1) match($x) {}';
# [not an attribute]
// #[not an attribute either]`},
		{"conditional_function", `function outer()
{
    static $cache = array();
    $x = $cache ? A : B;
    return $x;
}
list('a' => $p, 'b' => $q) = $arr;
[$r, [$s]] = $arr;`},
	}
	for _, c := range php74 {
		t.Run(c.name, func(t *testing.T) {
			p := writeSnippet(t, c.name, "<?php\n"+c.src+"\n")
			if lint, err := exec.Command(php, "-l", p).CombinedOutput(); err != nil {
				t.Fatalf("snippet is not valid PHP: %v\n%s", err, lint)
			}
			if out, code := runCompat(t, p); code != 0 || out != "" {
				t.Errorf("exit %d, want 0 and no output, got:\n%s", code, out)
			}
		})
	}
	// Namespaced imports and declare need their own files.
	for name, src := range map[string]string{
		"declare":   "<?php\ndeclare(strict_types=1);\n$x = f(A ? B : C);\n",
		"namespace": "<?php\nnamespace App;\n\nuse Foo\\Bar;\nuse function Foo\\baz;\nuse const Foo\\QUX;\n\nfunction str_contains($a, $b) { return false; }\n$x = str_contains('a', 'b');\n",
	} {
		t.Run(name, func(t *testing.T) {
			p := writeSnippet(t, name, src)
			if lint, err := exec.Command(php, "-l", p).CombinedOutput(); err != nil {
				t.Fatalf("snippet is not valid PHP: %v\n%s", err, lint)
			}
			if out, code := runCompat(t, p); code != 0 || out != "" {
				t.Errorf("exit %d, want 0 and no output, got:\n%s", code, out)
			}
		})
	}
}

func TestCompatCheckerUsage(t *testing.T) {
	phpBinary(t)
	clean := writeSnippet(t, "clean", "<?php\necho 1;\n")
	dirty := writeSnippet(t, "dirty", "<?php\n$a = $b?->c;\n$d = match ($e) { default => 1 };\n")
	missing := filepath.Join(t.TempDir(), "missing.php")
	for _, c := range []struct {
		name  string
		files []string
		code  int
		out   string
	}{
		{"no_files", nil, 2, ""},
		{"missing_file", []string{missing}, 2, ""},
		{"missing_wins", []string{dirty, missing}, 2, dirty + ":2: nullsafe operator ?-> needs PHP 8.0\n" + dirty + ":3: match expression needs PHP 8.0\n"},
		{"clean", []string{clean}, 0, ""},
		{"several", []string{clean, dirty}, 1, dirty + ":2: nullsafe operator ?-> needs PHP 8.0\n" + dirty + ":3: match expression needs PHP 8.0\n"},
	} {
		t.Run(c.name, func(t *testing.T) {
			out, code := runCompat(t, c.files...)
			if code != c.code || out != c.out {
				t.Errorf("exit %d, output:\n%s\nwant exit %d, output:\n%s", code, out, c.code, c.out)
			}
		})
	}
}
