from raftq.cli.main import main

main()
