module github.com/mcstack/mcstack

go 1.26
