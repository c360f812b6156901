<?php
/**
 * php74_compat.php: flag syntax and library functions newer than PHP 7.4.
 *
 *   php php74_compat.php FILE...
 *
 * The WHMCS hook files must run on PHP 7.4 - 8.3, but CI only has a newer
 * php-cli, whose `php -l` happily accepts PHP 8 syntax. This script lexes
 * each FILE with token_get_all() (the running PHP's tokenizer, which knows
 * the PHP 8 tokens such as T_MATCH) and walks the significant tokens with a
 * small state machine: a stack of open brackets, each remembering what kind
 * of bracket it is (call arguments, a parameter list, a catch, ...), plus a
 * few "what the next bracket opens" flags. One line per finding:
 *
 *   FILE:LINE: <construct> needs PHP <version>
 *
 * Exit status: 0 no findings, 1 findings, 2 usage or read error.
 *
 * It is a linter, not a parser: it knows the constructs in the rules below
 * and stays silent on anything else. It needs PHP >= 8.1 to run (for the
 * 8.1 tokens) but is itself PHP 7.4 code: token kinds are compared by name
 * (token_name()), so no T_* constant newer than 7.4 is referenced.
 */

if (PHP_SAPI !== 'cli') {
    exit(2);
}

/** An open bracket: '(' '[' '{' or '#['. */
final class Php74CompatFrame
{
    /**
     * call (argument list), params (parameter list), use (closure use
     * list), catch, group (any other parenthesis), array ('['), attribute
     * ('#['), block ('{'), class (class/interface/trait/enum body) or file
     * (the root, never closed).
     *
     * @var string
     */
    public $kind;
    /** @var int index of the opening token */
    public $open;
    /** @var int ternary '?' seen at this level whose ':' is still to come */
    public $pendingTernary = 0;
    /** @var bool params: the list of a closure (which may have a use list) */
    public $closure = false;
    /** @var string params: where the current parameter is: type, name or default */
    public $stage = 'type';
    /** @var int[] params: token indexes of the current parameter's type */
    public $type = array();
    /** @var bool catch: a variable was seen */
    public $variable = false;

    public function __construct(string $kind, int $open)
    {
        $this->kind = $kind;
        $this->open = $open;
    }
}

final class Php74Compat
{
    /** Library functions newer than PHP 7.4: lower-case name => version. */
    const FUNCTIONS = array(
        'str_contains' => '8.0', 'str_starts_with' => '8.0', 'str_ends_with' => '8.0',
        'get_debug_type' => '8.0', 'get_resource_id' => '8.0', 'fdiv' => '8.0',
        'preg_last_error_msg' => '8.0',
        'array_is_list' => '8.1', 'enum_exists' => '8.1', 'fsync' => '8.1', 'fdatasync' => '8.1',
        'mysqli_fetch_column' => '8.1', 'imagecreatefromavif' => '8.1', 'imageavif' => '8.1',
        'ini_parse_quantity' => '8.2', 'memory_reset_peak_usage' => '8.2',
        'mysqli_execute_query' => '8.2', 'openssl_cipher_key_length' => '8.2', 'curl_upkeep' => '8.2',
        'libxml_get_external_entity_loader' => '8.2',
        'json_validate' => '8.3', 'mb_str_pad' => '8.3', 'str_increment' => '8.3', 'str_decrement' => '8.3',
        'stream_context_set_options' => '8.3', 'posix_sysconf' => '8.3', 'posix_pathconf' => '8.3',
        'posix_fpathconf' => '8.3', 'posix_eaccess' => '8.3', 'socket_atmark' => '8.3',
        'array_find' => '8.4', 'array_find_key' => '8.4', 'array_any' => '8.4', 'array_all' => '8.4',
        'mb_trim' => '8.4', 'mb_ltrim' => '8.4', 'mb_rtrim' => '8.4', 'mb_ucfirst' => '8.4',
        'mb_lcfirst' => '8.4', 'bcdivmod' => '8.4', 'bcround' => '8.4', 'bcceil' => '8.4',
        'bcfloor' => '8.4', 'fpow' => '8.4', 'http_get_last_response_headers' => '8.4',
        'http_clear_last_response_headers' => '8.4', 'request_parse_body' => '8.4',
        'grapheme_str_split' => '8.4',
    );

    /**
     * Classes newer than PHP 7.4, flagged where using a missing class is
     * fatal (new, ::, extends, implements) but not in catch, instanceof or
     * type declarations: lower-case name => version.
     */
    const CLASSES = array(
        'stringable' => '8.0', 'weakmap' => '8.0', 'valueerror' => '8.0',
        'unhandledmatcherror' => '8.0', 'phptoken' => '8.0',
        'fiber' => '8.1', 'fibererror' => '8.1',
        'random\\randomizer' => '8.2',
        'dateexception' => '8.3', 'dateerror' => '8.3', 'dateobjecterror' => '8.3',
        'daterangeerror' => '8.3', 'datemalformedstringexception' => '8.3',
        'dateinvalidtimezoneexception' => '8.3', 'dateinvalidoperationexception' => '8.3',
        'datemalformedintervalstringexception' => '8.3', 'datemalformedperiodstringexception' => '8.3',
    );

    /** Tokens after which a throw is an expression, not a statement. */
    const THROW_EXPRESSION_AFTER = array(
        'T_COALESCE', 'T_COALESCE_EQUAL', 'T_DOUBLE_ARROW', '=', '?', ',', '(', '[',
        'T_BOOLEAN_AND', 'T_BOOLEAN_OR', 'T_LOGICAL_AND', 'T_LOGICAL_OR', 'T_LOGICAL_XOR',
    );

    const MEMBER_ACCESS = array('T_OBJECT_OPERATOR', 'T_NULLSAFE_OBJECT_OPERATOR', 'T_DOUBLE_COLON');
    const AMPERSANDS = array('&', 'T_AMPERSAND_FOLLOWED_BY_VAR_OR_VARARG', 'T_AMPERSAND_NOT_FOLLOWED_BY_VAR_OR_VARARG');
    const NAMES = array('T_STRING', 'T_NAME_QUALIFIED', 'T_NAME_FULLY_QUALIFIED', 'T_NAME_RELATIVE');
    const MEMBER_MODIFIERS = array(
        'T_PUBLIC', 'T_PROTECTED', 'T_PRIVATE', 'T_VAR', 'T_STATIC', 'T_READONLY', 'T_FINAL', 'T_ABSTRACT',
    );
    const VISIBILITY = array('T_PUBLIC', 'T_PROTECTED', 'T_PRIVATE');

    /** @var array[] significant tokens: array(kind, text, line); kind is a token name or the character */
    private $t = array();
    /** @var Php74CompatFrame[] open brackets, innermost last; [0] is the file */
    private $stack = array();
    /** @var array[] array(line, sequence, message) */
    private $findings = array();
    /** @var array[] uses of newer functions/classes: array(function|class, name, token index) */
    private $uses = array();
    /** @var bool[] lower-case names of the functions the file itself defines (polyfills) */
    private $definedFunctions = array();
    /** @var bool[] lower-case names of the classes the file itself defines */
    private $definedClasses = array();
    /** @var bool[] lower-case function/class names the file tests with function_exists()/class_exists() */
    private $guarded = array();
    /** @var bool[] token indexes known to be part of a type declaration */
    private $typeToken = array();
    /** @var bool[] indexes of ':' tokens that are the "else" of a ternary */
    private $ternaryElse = array();

    /** @var bool the next '(' opens a parameter list (after function/fn) */
    private $paramsNext = false;
    /** @var bool ... and that list belongs to a closure */
    private $closureNext = false;
    /** @var bool the next '{' opens a class body */
    private $classNext = false;
    /** @var int index of a closure's "use": the '(' after it opens the use list */
    private $useListAt = -1;

    /**
     * Checks PHP source code.
     *
     * @return array[] findings sorted by line: array(line, "<construct> needs PHP <version>")
     */
    public static function check(string $src): array
    {
        $c = new self();
        $c->tokenize($src);
        $c->run();
        return $c->result();
    }

    /** Keeps the significant tokens, with a line number for every one. */
    private function tokenize(string $src)
    {
        $skip = array('T_WHITESPACE', 'T_COMMENT', 'T_DOC_COMMENT', 'T_OPEN_TAG', 'T_OPEN_TAG_WITH_ECHO', 'T_INLINE_HTML');
        $line = 1;
        foreach (token_get_all($src) as $tok) {
            if (!is_array($tok)) {
                $this->t[] = array($tok, $tok, $line);
                continue;
            }
            $kind = token_name($tok[0]);
            $line = $tok[2] + substr_count($tok[1], "\n");
            if ($kind === 'T_CLOSE_TAG') {
                $this->t[] = array(';', ';', $tok[2]); // a closing tag ends a statement
            } elseif (!in_array($kind, $skip, true)) {
                $this->t[] = array($kind, $tok[1], $tok[2]);
            }
        }
    }

    private function run()
    {
        $this->stack = array(new Php74CompatFrame('file', -1));
        for ($i = 0, $n = count($this->t); $i < $n; $i++) {
            $this->step($i);
        }
        // Newer functions and classes, unless the file defines them itself
        // (a polyfill) or tests for them (if (function_exists('fsync'))
        // fsync($fh);): either way it knows they may be missing.
        foreach ($this->uses as $use) {
            list($what, $name, $i) = $use;
            if (isset($this->guarded[$name])) {
                continue;
            }
            if ($what === 'function' && !isset($this->definedFunctions[$name])) {
                $this->find($i, 'function ' . $name . '()', self::FUNCTIONS[$name]);
            }
            $short = strtolower(substr(strrchr('\\' . $name, '\\'), 1));
            if ($what === 'class' && !isset($this->definedClasses[$short])) {
                $this->find($i, 'class ' . ltrim($this->t[$i][1], '\\'), self::CLASSES[$name]);
            }
        }
    }

    /** One step of the state machine: token $i. */
    private function step(int $i)
    {
        list($k, $text) = $this->t[$i];
        $top = $this->stack[count($this->stack) - 1];

        // Named argument: "(" or "," then an identifier (keywords too:
        // f(array: 1)) then ":" (not "::", a token of its own), directly in
        // a call's argument list. A ternary's ":" cannot follow "(" NAME or
        // ", NAME" without a "?" in between; case, goto labels and the
        // alternative syntax are never directly inside call parentheses.
        if ($top->kind === 'call' && in_array($this->kind($i - 1), array('(', ','), true)
            && $this->isName($i) && $this->kind($i + 1) === ':') {
            $this->find($i, 'named argument ' . $text . ':', '8.0');
        }
        if ($top->kind === 'params') {
            $this->parameterToken($top, $i);
        }
        // function () use ($a, $b,): 8.0.
        if ($top->kind === 'use' && $k === ',' && $this->kind($i + 1) === ')') {
            $this->find($i, 'trailing comma in a closure use list', '8.0');
        }

        switch ($k) {
            // --- brackets ---------------------------------------------
            case '(':
                $this->push($this->parenKind($i), $i);
                break;
            case '[':
                $this->push('array', $i);
                break;
            case 'T_ATTRIBUTE':
                // #[...] (a comment up to the end of the line in PHP 7.4).
                $this->find($i, 'attribute #[...]', '8.0');
                $this->push('attribute', $i);
                break;
            case '{':
                $this->push($this->classNext ? 'class' : 'block', $i);
                $this->classNext = false;
                break;
            case 'T_CURLY_OPEN':                // "{$x}" in a string
            case 'T_DOLLAR_OPEN_CURLY_BRACES':  // "${x}" in a string
                $this->push('block', $i);
                break;
            case ')':
            case ']':
            case '}':
                $this->pop($i);
                break;

            // --- statement structure ------------------------------------
            case ';':
                $top->pendingTernary = 0;
                $this->paramsNext = false; // "use function foo;" declares no parameters
                break;
            case '?':
                // A ternary, unless it makes a type nullable (?int).
                if (!isset($this->typeToken[$i]) && !($top->kind === 'params' && $top->stage === 'type')) {
                    $top->pendingTernary++;
                }
                break;
            case ':':
                if (!isset($this->typeToken[$i]) && $top->pendingTernary > 0) {
                    $top->pendingTernary--;
                    $this->ternaryElse[$i] = true;
                }
                break;
            case 'T_VARIABLE':
                if ($top->kind === 'catch') {
                    $top->variable = true;
                }
                break;

            // --- declarations -------------------------------------------
            case 'T_FUNCTION':
            case 'T_FN':
                $this->functionKeyword($i);
                break;
            case 'T_CLASS':
            case 'T_INTERFACE':
            case 'T_TRAIT':
            case 'T_ENUM':
                if (!$this->isKeyword($i)) {
                    break; // Foo::class, ->enum, function enum()
                }
                if ($k === 'T_ENUM') {
                    $this->find($i, 'enum', '8.1');
                }
                $this->classNext = true;
                if ($this->isName($i + 1)) {
                    $this->definedClasses[strtolower($this->t[$i + 1][1])] = true;
                }
                break;
            case 'T_EXTENDS':
            case 'T_IMPLEMENTS':
                // extends A / implements A, B: a missing parent is fatal.
                for ($j = $i + 1; in_array($this->kind($j), array_merge(self::NAMES, array(',')), true); $j++) {
                    $this->useClass($j);
                }
                break;
            case 'T_PUBLIC':
            case 'T_PROTECTED':
            case 'T_PRIVATE':
            case 'T_VAR':
            case 'T_STATIC':
                $this->propertyType($i);
                break;
            case 'T_READONLY':
                // readonly classes (8.2) and properties (8.1).
                if (!$this->isKeyword($i)) {
                    break;
                }
                $j = $i + 1;
                while (in_array($this->kind($j), array('T_FINAL', 'T_ABSTRACT'), true)) {
                    $j++;
                }
                if ($this->kind($j) === 'T_CLASS') {
                    $this->find($i, 'readonly class', '8.2');
                } else {
                    $this->find($i, 'readonly property', '8.1');
                    $this->propertyType($i);
                }
                break;
            case 'T_CONST':
                $this->constant($i);
                break;

            // --- expressions --------------------------------------------
            case 'T_MATCH':
                // match (...) { ... }; "match" is a name after ->, ::, function.
                if ($this->isKeyword($i) && $this->kind($i + 1) === '('
                    && $this->kind($this->closing($i + 1) + 1) === '{') {
                    $this->find($i, 'match expression', '8.0');
                }
                break;
            case 'T_NULLSAFE_OBJECT_OPERATOR':
                $this->find($i, 'nullsafe operator ?->', '8.0');
                break;
            case 'T_LNUMBER':
                if (preg_match('/^0[oO]/', $text)) {
                    $this->find($i, 'explicit octal literal ' . $text, '8.1');
                }
                break;
            case 'T_ELLIPSIS':
                // f(...) creates a closure; f(...$args) is 5.6 unpacking.
                if ($this->kind($i - 1) === '(' && $this->kind($i + 1) === ')') {
                    $this->find($i, 'first-class callable syntax (...)', '8.1');
                }
                break;
            case 'T_THROW':
                // throw as an expression: $a ?? throw, fn() => throw, ...
                $prev = $this->kind($i - 1);
                if (in_array($prev, self::THROW_EXPRESSION_AFTER, true) || ($prev === ':' && isset($this->ternaryElse[$i - 1]))) {
                    $this->find($i, 'throw expression', '8.0');
                }
                break;
            case 'T_DOUBLE_COLON':
                $this->doubleColon($i);
                break;
            case 'T_NEW':
                if ($this->kind($i + 1) === '(') {
                    $this->find($i, 'new (expression)', '8.0');
                }
                if ($this->inParameterDefault()) {
                    $this->find($i, 'new in a parameter default', '8.1');
                }
                if (in_array($this->kind($i + 1), self::NAMES, true)) {
                    $this->useClass($i + 1);
                }
                break;
            case 'T_INSTANCEOF':
                if ($this->kind($i + 1) === '(') {
                    $this->find($i, 'instanceof (expression)', '8.0');
                }
                break;
            case 'T_STRING':
            case 'T_NAME_FULLY_QUALIFIED':
            case 'T_NAME_QUALIFIED':
                $this->nameToken($i);
                break;
        }
    }

    // -------------------------------------------------------------------
    // brackets

    private function push(string $kind, int $i)
    {
        $frame = new Php74CompatFrame($kind, $i);
        if ($kind === 'params') {
            $frame->closure = $this->closureNext;
            $this->closureNext = false;
        }
        $this->stack[] = $frame;
    }

    /** Closes the innermost bracket and runs the checks due at its end. */
    private function pop(int $i)
    {
        if (count($this->stack) < 2) {
            return; // unbalanced: never close the file
        }
        $frame = array_pop($this->stack);
        switch ($frame->kind) {
            case 'catch':
                // catch (E) without a variable.
                if (!$frame->variable) {
                    $this->find($frame->open, 'catch without a variable', '8.0');
                }
                break;
            case 'params':
                // A closure's use list comes before its return type.
                if ($frame->closure && $this->kind($i + 1) === 'T_USE') {
                    $this->useListAt = $i + 1;
                } else {
                    $this->returnType($i + 1);
                }
                break;
            case 'use':
                $this->returnType($i + 1);
                break;
        }
    }

    /** What the '(' at $i opens. */
    private function parenKind(int $i): string
    {
        if ($this->paramsNext) {
            $this->paramsNext = false;
            return 'params';
        }
        $prev = $this->kind($i - 1);
        if ($prev === 'T_USE' && $this->useListAt === $i - 1) {
            return 'use';
        }
        if ($prev === 'T_CATCH') {
            return 'catch';
        }
        // f(, Foo\f(, $f(, f()(, $a[0](, $o->{'m'}(, new static(, new class(
        if (in_array($prev, array_merge(self::NAMES, array('T_VARIABLE', ')', ']', '}', 'T_STATIC', 'T_CLASS')), true)) {
            return 'call';
        }
        // ->list(, ::match(: a keyword used as a method name.
        if ($this->isName($i - 1) && in_array($this->kind($i - 2), self::MEMBER_ACCESS, true)) {
            return 'call';
        }
        return 'group'; // if (, array(, isset(, (expression), ...
    }

    /** Index of the bracket closing the one opened at $open (or past the end). */
    private function closing(int $open): int
    {
        $opens = $this->kind($open) === '(' ? array('(') : array('{', 'T_CURLY_OPEN', 'T_DOLLAR_OPEN_CURLY_BRACES');
        $close = $this->kind($open) === '(' ? ')' : '}';
        $depth = 0;
        for ($j = $open, $n = count($this->t); $j < $n; $j++) {
            if (in_array($this->kind($j), $opens, true)) {
                $depth++;
            } elseif ($this->kind($j) === $close && --$depth === 0) {
                return $j;
            }
        }
        return $j;
    }

    // -------------------------------------------------------------------
    // functions and types

    /** function / fn: the next '(' opens a parameter list. */
    private function functionKeyword(int $i)
    {
        if (in_array($this->kind($i - 1), array_merge(self::MEMBER_ACCESS, array('T_USE')), true)) {
            return; // use function Foo\bar;
        }
        $name = $i + 1;
        if (in_array($this->kind($name), self::AMPERSANDS, true)) {
            $name++; // function &f()
        }
        $this->paramsNext = true;
        $this->closureNext = $this->kind($i) === 'T_FUNCTION' && $this->kind($name) === '(';
        if ($this->kind($i) === 'T_FUNCTION' && $this->isName($name) && !$this->inClassBody()) {
            $this->definedFunctions[strtolower($this->t[$name][1])] = true;
        }
    }

    /** A token directly inside a parameter list. */
    private function parameterToken(Php74CompatFrame $f, int $i)
    {
        $k = $this->kind($i);
        if ($k === ',') {
            // function f($a, $b,) / function ($a,): 8.0 (in calls: 7.3).
            if ($this->kind($i + 1) === ')') {
                $this->find($i, 'trailing comma in a parameter list', '8.0');
            }
            $f->stage = 'type';
            $f->type = array();
            return;
        }
        if ($f->stage === 'type') {
            if (in_array($k, self::VISIBILITY, true)) {
                // __construct(private $x): constructor property promotion.
                $this->find($i, 'constructor property promotion', '8.0');
            } elseif ($k === 'T_VARIABLE') {
                $this->checkType($f->type, 'parameter');
                $f->stage = 'name';
            } elseif ($k !== 'T_READONLY') {
                $f->type[] = $i; // the type (and &, ..., attributes: ignored)
                $this->typeToken[$i] = true;
            }
        } elseif ($f->stage === 'name' && $k === '=') {
            $f->stage = 'default';
        }
    }

    /** The return type declaration starting at $j, if any (": type"). */
    private function returnType(int $j)
    {
        if ($this->kind($j) !== ':') {
            return;
        }
        $this->typeToken[$j] = true;
        $type = array();
        for ($j++, $n = count($this->t); $j < $n && !in_array($this->kind($j), array('{', ';', 'T_DOUBLE_ARROW'), true); $j++) {
            $type[] = $j;
            $this->typeToken[$j] = true;
        }
        $this->checkType($type, 'return');
    }

    /**
     * Typed property: modifiers, a type, then the variable. Runs at the
     * first modifier of a class member.
     */
    private function propertyType(int $i)
    {
        $top = $this->stack[count($this->stack) - 1];
        if ($top->kind !== 'class' || in_array($this->kind($i - 1), self::MEMBER_MODIFIERS, true)) {
            return;
        }
        $j = $i;
        while (in_array($this->kind($j), self::MEMBER_MODIFIERS, true)) {
            $j++;
        }
        $type = array();
        $end = array('T_VARIABLE', 'T_FUNCTION', 'T_CONST', ';', '=', '{', '}', '');
        for (; !in_array($this->kind($j), $end, true); $j++) {
            $type[] = $j;
        }
        if ($this->kind($j) === 'T_VARIABLE' && $type) {
            foreach ($type as $t) {
                $this->typeToken[$t] = true;
            }
            $this->checkType($type, 'property');
        }
    }

    /** The types PHP 7.4 does not know. $type: token indexes. */
    private function checkType(array $type, string $where)
    {
        if (!$type) {
            return;
        }
        $names = array();
        foreach ($type as $j) {
            $k = $this->kind($j);
            if ($k === '|') {
                $this->find($j, 'union type', '8.0');
            } elseif ($k === 'T_AMPERSAND_NOT_FOLLOWED_BY_VAR_OR_VARARG') {
                $this->find($j, 'intersection type', '8.1');
            } elseif ($k === '(') {
                $this->find($j, 'DNF type (A&B)|C', '8.2');
            } elseif ($this->isName($j) || in_array($k, self::NAMES, true)) {
                $names[] = strtolower(ltrim($this->t[$j][1], '\\'));
            }
        }
        foreach ($names as $name) {
            if ($name === 'mixed') {
                $this->find($type[0], 'mixed type', '8.0');
            } elseif ($name === 'never') {
                $this->find($type[0], 'never type', '8.1');
            } elseif ($name === 'static' && $where === 'return') {
                $this->find($type[0], 'static return type', '8.0');
            } elseif ($name === 'true') {
                $this->find($type[0], 'true type', '8.2');
            }
        }
        if (count($names) === 1 && ($names[0] === 'false' || $names[0] === 'null')) {
            $this->find($type[0], 'standalone ' . $names[0] . ' type', '8.2');
        }
    }

    /** Is the current token inside a parameter's default value? */
    private function inParameterDefault(): bool
    {
        for ($d = count($this->stack) - 1; $d > 0; $d--) {
            $f = $this->stack[$d];
            if ($f->kind === 'params') {
                return $f->stage === 'default';
            }
            if (!in_array($f->kind, array('group', 'array', 'call'), true)) {
                return false; // a body: not a default value
            }
        }
        return false;
    }

    /** Is the innermost block a class body (so "function" declares a method)? */
    private function inClassBody(): bool
    {
        for ($d = count($this->stack) - 1; $d >= 0; $d--) {
            $kind = $this->stack[$d]->kind;
            if (in_array($kind, array('class', 'block', 'file'), true)) {
                return $kind === 'class';
            }
        }
        return false;
    }

    // -------------------------------------------------------------------
    // constants, ::, names

    /** const: final constants (8.1) and typed class constants (8.3). */
    private function constant(int $i)
    {
        if (!$this->isKeyword($i) || $this->kind($i - 1) === 'T_USE') {
            return; // Foo::CONST, use const Foo\BAR;
        }
        for ($j = $i - 1; in_array($this->kind($j), array('T_PUBLIC', 'T_PROTECTED', 'T_PRIVATE', 'T_FINAL'), true); $j--) {
            if ($this->kind($j) === 'T_FINAL') {
                $this->find($j, 'final class constant', '8.1');
            }
        }
        // const int X = 1: more than one name before the "=".
        $names = 0;
        for ($j = $i + 1; !in_array($this->kind($j), array('=', ';', ''), true); $j++) {
            if ($this->isName($j) || in_array($this->kind($j), self::NAMES, true)) {
                $names++;
            }
        }
        if ($this->kind($j) === '=' && $names > 1) {
            $this->find($i, 'typed class constant', '8.3');
        }
    }

    private function doubleColon(int $i)
    {
        $next = $this->kind($i + 1);
        if ($next === 'T_CLASS') {
            // $obj::class, $a->b::class, f()::class (Foo::class is 5.5).
            $prev = $this->kind($i - 1);
            if (in_array($prev, array('T_VARIABLE', ')', ']', '}'), true)
                || ($this->isName($i - 1) && in_array($this->kind($i - 2), self::MEMBER_ACCESS, true))) {
                $this->find($i, '::class on an object', '8.0');
            }
        } elseif ($next === '{' && $this->kind($this->closing($i + 1) + 1) !== '(') {
            // Foo::{$name} (Foo::{$name}() is a 7.0 static call).
            $this->find($i, 'dynamic class constant fetch ::{...}', '8.3');
        }
    }

    /** A name: a call of a newer function, or Foo:: of a newer class. */
    private function nameToken(int $i)
    {
        $prev = $this->kind($i - 1);
        if ($this->kind($i + 1) === '(' && $this->kind($i) !== 'T_NAME_QUALIFIED'
            && !in_array($prev, array_merge(self::MEMBER_ACCESS, array('T_FUNCTION', 'T_NEW', 'T_CONST')), true)
            && !(in_array($prev, self::AMPERSANDS, true) && $this->kind($i - 2) === 'T_FUNCTION')) {
            // f() or \f(), not ->f(), ::f(), new F(), function f().
            $name = strtolower(ltrim($this->t[$i][1], '\\'));
            if (array_key_exists($name, self::FUNCTIONS)) {
                $this->uses[] = array('function', $name, $i);
            }
            // function_exists('name'), class_exists('\\Name', false), ...
            if (in_array($name, array('function_exists', 'class_exists', 'interface_exists'), true)
                && $this->kind($i + 2) === 'T_CONSTANT_ENCAPSED_STRING'
                && in_array($this->kind($i + 3), array(')', ','), true)) {
                $this->guarded[strtolower(ltrim(stripslashes(trim($this->t[$i + 2][1], '\'"')), '\\'))] = true;
            }
        }
        if ($this->kind($i + 1) === 'T_DOUBLE_COLON' && !in_array($prev, self::MEMBER_ACCESS, true)) {
            $this->useClass($i);
        }
    }

    private function useClass(int $i)
    {
        $name = strtolower(ltrim($this->t[$i][1], '\\'));
        if (array_key_exists($name, self::CLASSES)) {
            $this->uses[] = array('class', $name, $i);
        }
    }

    // -------------------------------------------------------------------
    // helpers

    private function kind(int $i): string
    {
        return isset($this->t[$i]) ? $this->t[$i][0] : '';
    }

    /** An identifier or a keyword (which may serve as a name, e.g. ->list()). */
    private function isName(int $i): bool
    {
        if (!isset($this->t[$i]) || strlen($this->t[$i][0]) === 1
            || in_array($this->t[$i][0], array('T_VARIABLE', 'T_ENCAPSED_AND_WHITESPACE', 'T_CONSTANT_ENCAPSED_STRING'), true)) {
            return false;
        }
        return preg_match('/^[a-z_\x80-\xff][a-z0-9_\x80-\xff]*$/i', $this->t[$i][1]) === 1;
    }

    /**
     * Is the keyword token at $i used as a keyword, rather than as a name
     * (->match, Foo::match, function match, const ENUM, f(class: 1))?
     */
    private function isKeyword(int $i): bool
    {
        $prev = $this->kind($i - 1);
        if (in_array($prev, array_merge(self::MEMBER_ACCESS, array('T_FUNCTION', 'T_CONST')), true)) {
            return false;
        }
        if (in_array($prev, self::AMPERSANDS, true) && $this->kind($i - 2) === 'T_FUNCTION') {
            return false;
        }
        return !(in_array($prev, array('(', ','), true) && $this->kind($i + 1) === ':');
    }

    private function find(int $i, string $construct, string $version)
    {
        $line = isset($this->t[$i]) ? $this->t[$i][2] : 0;
        $message = $construct . ' needs PHP ' . $version;
        $this->findings[$line . ':' . $message] = array($line, count($this->findings), $message);
    }

    /** @return array[] array(line, message), by line (then order found) */
    private function result(): array
    {
        $findings = array_values($this->findings);
        usort($findings, function (array $a, array $b) {
            return $a[0] === $b[0] ? $a[1] - $b[1] : $a[0] - $b[0];
        });
        return array_map(function (array $f) {
            return array($f[0], $f[2]);
        }, $findings);
    }
}

function php74_compat_main(array $argv): int
{
    $files = array_slice($argv, 1);
    if (!$files || in_array($files[0], array('-h', '--help'), true)) {
        fwrite(STDERR, "usage: php php74_compat.php FILE...\n");
        return 2;
    }
    if (PHP_VERSION_ID < 80100) {
        fwrite(STDERR, "php74_compat.php needs PHP >= 8.1 to run (its tokenizer must know the PHP 8 tokens)\n");
        return 2;
    }
    $status = 0;
    foreach ($files as $file) {
        $src = is_file($file) ? @file_get_contents($file) : false;
        if ($src === false) {
            fwrite(STDERR, $file . ": cannot read\n");
            $status = 2;
            continue;
        }
        foreach (Php74Compat::check($src) as $finding) {
            echo $file, ':', $finding[0], ': ', $finding[1], "\n";
            if ($status === 0) {
                $status = 1;
            }
        }
    }
    return $status;
}

exit(php74_compat_main($argv));
