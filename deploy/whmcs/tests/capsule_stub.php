<?php
// A tiny stand-in for WHMCS's Capsule (Laravel query builder), just enough
// for Capsule::table(t)->where(...)->where(...)->first() / ->get() over
// canned rows.

namespace WHMCS\Database;

class Capsule
{
    /** @var array<string, array<int, array>> */
    public static $tables = array();

    public static function table(string $name): CapsuleQuery
    {
        return new CapsuleQuery(isset(self::$tables[$name]) ? self::$tables[$name] : array());
    }
}

class CapsuleQuery
{
    private $rows;

    public function __construct(array $rows)
    {
        $this->rows = $rows;
    }

    public function where(string $col, $op, $value = null): CapsuleQuery
    {
        if (func_num_args() === 2) {
            $value = $op;
            $op = '=';
        }
        $this->rows = array_values(array_filter($this->rows, function ($r) use ($col, $op, $value) {
            $v = isset($r[$col]) ? $r[$col] : null;
            switch ($op) {
                case '=':
                    return $v == $value;
                case '!=':
                    return $v != $value;
                case '<':
                    return $v < $value;
                case '>':
                    return $v > $value;
            }
            throw new \InvalidArgumentException('unsupported operator ' . $op);
        }));
        return $this;
    }

    /** @return array<int, object> (WHMCS returns a Collection; both iterate alike) */
    public function get(): array
    {
        return array_map(function ($r) {
            return (object) $r;
        }, $this->rows);
    }

    public function first()
    {
        return count($this->rows) > 0 ? (object) $this->rows[0] : null;
    }
}
