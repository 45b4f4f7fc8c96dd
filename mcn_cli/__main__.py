from mcn_cli.cli.main import main

main()
